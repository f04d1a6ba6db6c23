"""Fixtures shared by the fleet tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis


@pytest.fixture()
def queue_name(redis_url: str) -> Iterator[str]:
    """A fresh BullMQ queue name (seed 002's), its keys removed afterwards."""
    name = f"videoProcessingQueue{uuid.uuid4().hex[:8]}"
    yield name
    r = redis.Redis.from_url(redis_url)
    for key in r.scan_iter(match=f"bull:{name}:*"):
        r.delete(key)
    r.close()
