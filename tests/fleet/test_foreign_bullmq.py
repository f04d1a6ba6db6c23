"""The BullMQ busy probe against real BullMQ 5.x and 6.x workers (Node, started by the test) on the
real Redis: connected = the worker's named connection; busy = an active job it holds a lock on."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from foreign_env import VERSIONS, NodeWorker, producer

from ebbtide.fleet.foreign.base import BusyEvidence, BusyProbe, ProbeResult
from ebbtide.fleet.foreign.bullmq import BullMQProbe
from ebbtide.fleet.providers.base import Instance


@pytest.fixture()
def queue_name(redis_url: str) -> Iterator[str]:
    name = f"videoProcessing{uuid.uuid4().hex[:8]}"
    yield name
    r = redis.Redis.from_url(redis_url)
    for key in r.scan_iter(match=f"bull:{name}:*"):
        r.delete(key)
    r.close()


def _until(probe: BullMQProbe, insts: list[Instance], ok: object, timeout: float = 60.0) -> ProbeResult:
    end = time.monotonic() + timeout
    while True:
        r = probe.probe(insts)
        if ok(r):  # type: ignore[operator]
            return r
        if time.monotonic() > end:
            raise AssertionError(f"probe never matched: {r}")
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("major", sorted(VERSIONS))
def test_probe_reads_real_workers(major: str, redis_url: str, queue_name: str) -> None:
    insts = [Instance(i, "spot", 0.0) for i in ("i-0aaa", "i-0bbb", "i-0ccc")]
    probe = BullMQProbe.from_url(f"bullmq://127.0.0.1:6379/0/{queue_name}")
    assert isinstance(probe, BusyProbe)
    workers: list[NodeWorker] = []
    try:
        r = probe.probe(insts)
        assert r.in_flight == 0 and not any(v.connected for v in r.views.values())
        a = NodeWorker(major, redis_url, queue_name, "i-0aaa", job_ms=120_000)
        workers.append(a)
        a.wait_for("ready")
        producer(major, redis_url, queue_name, "add", "1")
        a.wait_for("start")
        # pm2-style: one instance, worker named <instance id>:<n>
        b = NodeWorker(major, redis_url, queue_name, "i-0bbb:0", job_ms=120_000)
        workers.append(b)
        b.wait_for("ready")
        r = _until(probe, insts, lambda r: r.views["i-0bbb"].connected and r.views["i-0aaa"].busy)
        assert r.in_flight == 1
        va, vb, vc = r.views["i-0aaa"], r.views["i-0bbb"], r.views["i-0ccc"]
        assert (va.connected, va.busy, va.how) == (True, True, BusyEvidence.LOCK_HELD)
        assert len(va.jobs) == 1
        assert (vb.connected, vb.busy, vb.how) == (True, False, BusyEvidence.NO_LOCK)
        assert (vc.connected, vc.busy, vc.how) == (False, None, BusyEvidence.UNKNOWN)
        # BullMQ's own registry agrees on who is connected
        names = producer(major, redis_url, queue_name, "report")["workers"]
        assert sorted(n.rsplit(":w:", 1)[1] for n in names) == ["i-0aaa", "i-0bbb:0"]
        # now b takes a job: busy
        producer(major, redis_url, queue_name, "add", "1")
        b.wait_for("start")
        r = _until(probe, insts, lambda r: r.views["i-0bbb"].busy)
        assert r.views["i-0bbb"].how == BusyEvidence.LOCK_HELD and r.in_flight == 2
        # an unnamed worker holds a job: nobody without a lock of its own can be said idle
        c = NodeWorker(major, redis_url, queue_name, None, job_ms=120_000)
        workers.append(c)
        c.wait_for("ready")
        producer(major, redis_url, queue_name, "add", "1")
        c.wait_for("start")
        r = _until(probe, insts, lambda r: r.in_flight == 3)
        assert r.views["i-0aaa"].busy and r.views["i-0bbb"].busy
        assert (r.views["i-0ccc"].busy, r.views["i-0ccc"].how) == (None, BusyEvidence.IN_FLIGHT_AGGREGATE)
        # a worker killed mid-job: its connection goes at once; its lock lapses (lockDuration 10 s)
        a.kill()
        r = _until(probe, insts, lambda r: not r.views["i-0aaa"].connected)
        r = _until(probe, insts, lambda r: not r.views["i-0aaa"].jobs, timeout=60)
        assert r.views["i-0aaa"].busy is None  # still: an unattributed job is active (c's)
    finally:
        for w in workers:
            w.stop()
        probe.close()
