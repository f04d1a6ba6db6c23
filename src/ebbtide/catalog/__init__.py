"""The catalog: media, jobs and their completion ledger, workers, fleet decisions, users.

`open_catalog` is the one way in: it normalises the URL, opens the engine and brings the schema
to the newest Alembic revision before handing out a `SqlCatalog`. SQLAlchemy is imported only
when a catalog is opened, so modules that just need the records and states stay light (a worker
process must start in well under a second).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ebbtide.catalog.base import Catalog
from ebbtide.clock import SYSTEM_CLOCK, Clock
from ebbtide.errors import BackendUnavailable

if TYPE_CHECKING:
    from ebbtide.catalog.sql import SqlCatalog

log = logging.getLogger(__name__)

__all__ = ["Catalog", "SqlCatalog", "open_catalog"]


def __getattr__(name: str) -> Any:
    if name == "SqlCatalog":
        from ebbtide.catalog.sql import SqlCatalog

        return SqlCatalog
    raise AttributeError(name)


def open_catalog(url: str, clock: Clock = SYSTEM_CLOCK) -> SqlCatalog:
    """Accepts sqlite:///path, postgresql://… and postgres://… (psycopg 3 is always the driver)."""
    from sqlalchemy.exc import OperationalError

    from ebbtide.catalog.engine import make_engine, normalise_url
    from ebbtide.catalog.migrate import upgrade
    from ebbtide.catalog.sql import SqlCatalog

    parsed = normalise_url(url)
    shown = parsed.render_as_string(hide_password=True)  # never log or print a password
    engine = make_engine(parsed)
    try:
        upgrade(engine, parsed)
    except OperationalError as e:
        engine.dispose()
        reason = str(e.orig).strip().splitlines()[0] if e.orig else "unknown error"
        raise BackendUnavailable(
            f"cannot open the catalog database {shown}: {reason}",
            hint="check catalog.url; for PostgreSQL, is the server running and the database created?",
            part="catalog",
        ) from None
    except Exception:
        engine.dispose()
        raise
    log.debug("catalog open", extra={"url": shown})
    return SqlCatalog(engine, clock=clock)
