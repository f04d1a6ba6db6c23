"""Bring a catalog database to the newest schema with Alembic, safely from many processes.

Every process that opens the catalog runs `upgrade head`. Several starting at once (a fleet of
local workers, the web app) must not race on a fresh database: SQLite takes an exclusive file
lock beside the database, PostgreSQL a transaction-scoped advisory lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL

from ebbtide.catalog.engine import READ_ONLY, is_sqlite, sqlite_path
from ebbtide.errors import EbbtideError

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
LOCK_TIMEOUT_S = 120.0
_PG_LOCK_KEY = 0xEB_B7_1D_E0  # any constant shared by all ebbtide processes
# The newest revision in migrations/versions. Kept as a constant so that opening an up-to-date
# catalog (every worker start) never imports Alembic; a test checks it against the scripts.
HEAD_REVISION = "0003"  # coordinator: the last re-chained revision


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(conn: Connection) -> str | None:
    """The stamped revision, read with plain SQL (None on a fresh database)."""
    if not conn.dialect.has_table(conn, "alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, url: URL) -> None:
    """Run `alembic upgrade head` on `engine`; a no-op when the schema is already current."""
    head = HEAD_REVISION
    with engine.connect().execution_options(**{READ_ONLY: True}) as conn:
        if current_revision(conn) == head:  # the common case: skip the lock entirely
            conn.rollback()
            return
        conn.rollback()
    path = sqlite_path(url) if is_sqlite(url) else None
    lock = _file_lock(Path(f"{path}.migrate-lock")) if path else contextlib.nullcontext()
    with lock, engine.connect() as conn:
        if not is_sqlite(url):
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        from alembic import command
        from alembic.util.exc import CommandError

        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        before = current_revision(conn)
        try:
            command.upgrade(cfg, "head")
        except CommandError as e:
            raise EbbtideError(
                f"the catalog's schema (revision {before}) is not one this ebbtide knows: {e}",
                hint="the database was migrated by a newer ebbtide; upgrade ebbtide or use another catalog",
            ) from None
        conn.commit()
    if before != head:
        log.info("catalog migrated", extra={"from_revision": before, "to_revision": head})


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EbbtideError(
                        f"timed out after {timeout:.0f} s waiting for the catalog migration lock {path}",
                        hint="another ebbtide process is migrating the catalog or hung; "
                        "check for stuck processes",
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
