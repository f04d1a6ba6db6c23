"""Fault tests: private servers (never the shared 5432/6379) that the tests stop and start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import PrivateMoto, PrivatePostgres, PrivateRedis


@pytest.fixture()
def private_pg() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture()
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis(aof=False)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture()
def private_redis_aof() -> Iterator[PrivateRedis]:
    server = PrivateRedis(aof=True)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture()
def private_moto() -> Iterator[PrivateMoto]:
    server = PrivateMoto()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ebbtide.media.samples import generate_clip

    return generate_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", seconds=1, width=320, height=240)
