"""Schema: Alembic migrations run on a fresh database, are idempotent and match the models."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from ebbtide.catalog import open_catalog
from ebbtide.catalog.engine import make_engine, normalise_url
from ebbtide.catalog.migrate import HEAD_REVISION, current_revision, head_revision
from ebbtide.catalog.models import Base
from ebbtide.errors import ConfigError, EbbtideError

TABLES = {"users", "api_tokens", "media", "jobs", "attempts", "workers", "fleet_decisions"}


def test_fresh_database_is_migrated_to_head_and_reopening_is_a_no_op(catalog_url: str) -> None:
    first = open_catalog(catalog_url)
    first.close()
    second = open_catalog(catalog_url)  # idempotent: same head, nothing re-created
    try:
        with second.engine.connect() as conn:
            assert current_revision(conn) == head_revision() == HEAD_REVISION
            assert set(inspect(conn).get_table_names()) >= TABLES
    finally:
        second.close()


def test_migration_matches_the_models(catalog_url: str) -> None:
    cat = open_catalog(catalog_url)
    try:
        with cat.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
    finally:
        cat.close()


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgres://u:p@db:5432/x", "postgresql+psycopg"),
        ("postgresql://u@db/x", "postgresql+psycopg"),
        ("postgresql+psycopg://u@db/x", "postgresql+psycopg"),
        ("sqlite:///tmp/x.db", "sqlite"),
    ],
)
def test_urls_are_normalised_to_one_driver(url: str, driver: str) -> None:
    assert normalise_url(url).drivername == driver


@pytest.mark.parametrize("url", ["", "mysql://db/x", "not a url", "postgresql+asyncpg://db/x"])
def test_bad_urls_fail_with_a_hint(url: str) -> None:
    with pytest.raises(ConfigError) as e:
        normalise_url(url)
    assert e.value.hint and "sqlite:///" in e.value.hint


def test_in_memory_sqlite_works_for_quick_tools() -> None:
    cat = open_catalog("sqlite://")
    try:
        assert cat.create_user("x").name == "x"
        assert cat.find_user("x") is not None
    finally:
        cat.close()


def test_sqlite_is_opened_in_wal_with_a_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(normalise_url(f"sqlite:///{tmp_path / 'c.db'}"))
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgres://ebbtide:hunter2@127.0.0.1:{port}/nothing"
    with pytest.raises(EbbtideError) as e:
        open_catalog(url)
    assert "cannot open the catalog database" in str(e.value) and e.value.hint
    assert "hunter2" not in str(e.value)


def test_a_schema_from_a_newer_ebbtide_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    open_catalog(url).close()
    engine = make_engine(normalise_url(url))
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    with pytest.raises(EbbtideError, match="9999") as e:
        open_catalog(url)
    assert e.value.hint and "newer" in e.value.hint
