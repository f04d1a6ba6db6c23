"""`SqlCatalog`: the Catalog port on SQLAlchemy, one code path for SQLite and PostgreSQL.

Each group of methods lives in its own module (users, media, jobs and ledger, workers and fleet);
the shared sessions and row helpers are in sql_core.
"""

from __future__ import annotations

from ebbtide.catalog.sql_jobs import JobsPart
from ebbtide.catalog.sql_media import MediaPart
from ebbtide.catalog.sql_users import UsersPart
from ebbtide.catalog.sql_workers import WorkersPart


class SqlCatalog(UsersPart, MediaPart, JobsPart, WorkersPart):
    """Implements `ebbtide.catalog.base.Catalog`; open it with `ebbtide.catalog.open_catalog`."""
