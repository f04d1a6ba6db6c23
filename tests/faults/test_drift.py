"""Catalog/queue drift: what a Redis restart keeps with and without AOF, the reconciler that
re-sends what was lost (once), the scaler counting stranded jobs as waiting, and the backends'
typed, logged-once outages."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from servers import PrivatePostgres, PrivateRedis

from ebbtide.catalog import open_catalog
from ebbtide.catalog.records import Job
from ebbtide.catalog.states import JobState
from ebbtide.clock import SYSTEM_CLOCK
from ebbtide.errors import BackendUnavailable
from ebbtide.fleet.sources import CatalogQueueSource
from ebbtide.queue.postgres import PostgresQueue
from ebbtide.queue.redis import RedisQueue
from ebbtide.reconcile import resend_stranded, stranded
from ebbtide.worker.messages import JobMessage
from ebbtide.worker.riding import ride_out


def _jobs(tmp_path: Path, queue: RedisQueue, n: int) -> tuple[object, list[str]]:
    cat = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    ids = []
    for _ in range(n):
        job = cat.create_job("command", {"command": "true"})
        queue.send(JobMessage(job.id, "command").body(), dedup_id=job.id)
        ids.append(job.id)
    return cat, ids


def test_redis_with_aof_keeps_its_messages(private_redis_aof: PrivateRedis, tmp_path: Path) -> None:
    q = RedisQueue(private_redis_aof.url, name="aof")
    cat, ids = _jobs(tmp_path, q, 3)
    private_redis_aof.stop()
    private_redis_aof.start()
    assert q.live_job_ids() == set(ids)  # fsynced before the crash, replayed on start
    assert resend_stranded(q, cat, older_than=0.0, now=SYSTEM_CLOCK.now()) == 0  # type: ignore[arg-type]
    q.close()


def test_redis_without_persistence_loses_them_and_the_reconciler_resends_once(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    q = RedisQueue(private_redis.url, name="plain")
    cat, ids = _jobs(tmp_path, q, 3)
    private_redis.stop()
    with pytest.raises(BackendUnavailable) as e:
        q.stats()
    assert e.value.part == "queue"
    private_redis.start()
    # reconnected by itself once the backoff ran out; everything was forgotten
    assert ride_out(q.stats, "stats", budget=10).backlog == 0
    source = CatalogQueueSource(q, cat, SYSTEM_CLOCK, resend_after=3600)  # type: ignore[arg-type]
    assert source.observe_queue().visible == 3  # the scaler counts them as waiting all the same
    now = SYSTEM_CLOCK.now()
    assert resend_stranded(q, cat, older_than=0.0, now=now) == 3  # type: ignore[arg-type]
    assert resend_stranded(q, cat, older_than=0.0, now=now) == 0  # idempotent: they are live now
    assert q.live_job_ids() == set(ids) and q.stats().visible == 3
    q.close()


def test_stranded_is_pure_and_cautious_without_an_index() -> None:
    def job(i: str, age: float) -> Job:
        return Job(i, "command", JobState.QUEUED, {}, 0.0, 100.0 - age)

    queued = [job("old", 50), job("new", 1), job("live", 50)]
    assert [j.id for j in stranded(queued, {"live"}, 0, 100.0, 20)] == ["old"]
    assert stranded(queued, None, 1, 100.0, 20) == []  # SQS with a backlog: cannot tell, waits
    assert [j.id for j in stranded(queued, None, 0, 100.0, 20)] == ["old", "live"]


def test_postgres_queue_reconnects_and_logs_one_line_per_outage(
    private_pg: PrivatePostgres, caplog: pytest.LogCaptureFixture
) -> None:
    q = PostgresQueue(private_pg.url, name="blink")
    q.send({"job_id": "j1", "kind": "command"})
    caplog.set_level(logging.WARNING, logger="ebbtide.outage")
    private_pg.stop()
    for _ in range(20):  # a tight caller loop during the outage
        with pytest.raises(BackendUnavailable):
            q.receive(wait=0)
    private_pg.start()
    got = ride_out(lambda: q.receive(wait=0.1), "receive", budget=15)  # reconnects both connections
    assert got and got[0].body["job_id"] == "j1"
    lines = [r.getMessage() for r in caplog.records if r.name == "ebbtide.outage"]
    assert len(lines) == 2 and "queue down" in lines[0] and "queue back" in lines[1], lines
    q.close()
