"""The catalog: media, jobs and their completion ledger, workers, fleet decisions, users.

`open_catalog` is the one way in: it normalises the URL, opens the engine and brings the schema
to the newest Alembic revision before handing out a `SqlCatalog`.
"""

from __future__ import annotations

import logging

from ebbtide.catalog.base import Catalog
from ebbtide.catalog.engine import make_engine, normalise_url
from ebbtide.catalog.migrate import upgrade
from ebbtide.catalog.sql import SqlCatalog
from ebbtide.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)

__all__ = ["Catalog", "SqlCatalog", "open_catalog"]


def open_catalog(url: str, clock: Clock = SYSTEM_CLOCK) -> SqlCatalog:
    """Accepts sqlite:///path, postgresql://… and postgres://… (psycopg 3 is always the driver)."""
    parsed = normalise_url(url)
    engine = make_engine(parsed)
    try:
        upgrade(engine, parsed)
    except Exception:
        engine.dispose()
        raise
    log.debug("catalog open", extra={"url": parsed.render_as_string(hide_password=True)})
    return SqlCatalog(engine, clock=clock)
