"""Catalog fixtures: every test runs on a SQLite file and on a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ebbtide.catalog import SqlCatalog, open_catalog
from ebbtide.catalog.records import User
from ebbtide.clock import VirtualClock


@pytest.fixture(params=["sqlite", "postgres"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture()
def clock() -> VirtualClock:
    return VirtualClock(start=1_700_000_000.0)


@pytest.fixture()
def cat(catalog_url: str, clock: VirtualClock) -> Iterator[SqlCatalog]:
    c = open_catalog(catalog_url, clock=clock)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture()
def alice(cat: SqlCatalog) -> User:
    return cat.create_user("alice")  # no password: scrypt is slow on purpose; test_users sets them


@pytest.fixture()
def bob(cat: SqlCatalog) -> User:
    return cat.create_user("bob")
