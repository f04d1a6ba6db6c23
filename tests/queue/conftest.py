"""One `make_queue` fixture parametrised over every queue backend, each on a real engine."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ebbtide.clock import SYSTEM_CLOCK
from ebbtide.config.sections import QueueConfig
from ebbtide.queue import Queue, open_queue
from ebbtide.sim.squeue import SimQueue

BACKENDS = ["sqlite", "sqs", "redis", "postgres", "sim"]  # sim: the simulator's queue (sim/squeue.py)

MakeQueue = Callable[..., Queue]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture()
def queue_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    if backend == "sim":
        return "sim://"  # not a URL open_queue knows: make_queue builds it directly
    if backend == "sqs":
        request.getfixturevalue("moto_endpoint")
        return f"sqs://t{uuid.uuid4().hex[:16]}"
    if backend == "redis":
        return str(request.getfixturevalue("redis_url"))
    return str(request.getfixturevalue("pg_url")).replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture()
def make_queue(backend: str, queue_url: str, request: pytest.FixtureRequest) -> Iterator[MakeQueue]:
    """Open queues on one backend; every queue opened by one test shares one name (unique per test)."""
    opened: list[Queue] = []
    name = f"q{uuid.uuid4().hex[:12]}"
    endpoint = request.getfixturevalue("moto_endpoint") if backend == "sqs" else None

    shared: dict[str, Queue] = {}

    def make(max_receives: int = 5) -> Queue:
        if backend == "sim":  # in memory: "the same name" is the same object
            if "q" not in shared:
                shared["q"] = SimQueue(max_receives=max_receives, clock=SYSTEM_CLOCK, name=name)
                opened.append(shared["q"])
            return shared["q"]
        cfg = QueueConfig(
            url=queue_url, name=name, max_receives=max_receives, endpoint_url=endpoint, region="us-east-1"
        )
        q = open_queue(cfg)
        opened.append(q)
        return q

    yield make
    for q in opened:
        if backend in ("redis", "postgres"):
            q.purge()
        q.close()
