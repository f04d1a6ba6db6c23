"""From a catalog URL to a SQLAlchemy engine that behaves the same on SQLite and PostgreSQL.

SQLite is opened for many processes at once (workers heartbeating, the web app, the scaler):
WAL, a 30 s busy timeout, and `BEGIN IMMEDIATE` for write transactions so two writers queue on
the busy handler at BEGIN instead of failing with "database is locked" when a reader upgrades.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from ebbtide.errors import ConfigError
from ebbtide.fsperm import private_file

BUSY_TIMEOUT_S = 30.0
READ_ONLY = "ebbtide_read_only"  # execution option: a plain deferred BEGIN on SQLite

_HINT = "use sqlite:///path/to/catalog.db or postgresql://user@host:5432/dbname"


def normalise_url(url: str) -> URL:
    """Accept sqlite:///…, postgresql://…, postgres://… and pick the psycopg 3 driver."""
    if not url:
        raise ConfigError("catalog.url is empty", hint=_HINT)
    raw = url
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw[len("postgres://") :]
    try:
        parsed = make_url(raw)
    except ArgumentError as e:
        raise ConfigError(f"catalog.url is not a database URL: {e}", hint=_HINT) from None
    if parsed.drivername in ("postgresql", "postgresql+psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        return parsed.set(drivername="sqlite")
    raise ConfigError(f"catalog.url scheme {parsed.drivername!r} is not supported", hint=_HINT)


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def sqlite_path(url: URL) -> Path | None:
    """The database file, or None for an in-memory database."""
    db = url.database
    if not db or db == ":memory:" or db.startswith("file::memory:"):
        return None
    return Path(db)


def make_engine(url: URL) -> Engine:
    if not is_sqlite(url):
        return create_engine(
            url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args={"connect_timeout": 10}
        )
    path = sqlite_path(url)
    if path is None:
        # one shared connection, or every pooled connection would see its own empty database
        engine = create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S}
        )
    else:
        private_file(path)  # 0600 before SQLite creates it (its -wal and -shm files copy the mode)
        engine = create_engine(
            url,
            pool_size=8,
            max_overflow=16,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S},
        )
    _sqlite_hooks(engine, wal=path is not None)
    return engine


def _sqlite_hooks(engine: Engine, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # take over transaction control from pysqlite so BEGIN IMMEDIATE is ours to send
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            if wal:
                cur.execute("PRAGMA journal_mode = WAL")
                cur.execute("PRAGMA synchronous = NORMAL")
            cur.execute("PRAGMA foreign_keys = ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
