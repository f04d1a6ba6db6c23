"""Worker heartbeats, drain, gone and re-registration; fleet decisions; cost; measured speeds."""

from __future__ import annotations

import pytest

from ebbtide.catalog import SqlCatalog
from ebbtide.catalog.records import User
from ebbtide.catalog.states import JobState, WorkerState
from ebbtide.clock import VirtualClock
from ebbtide.errors import IllegalTransition, NotFound


def test_heartbeats_drain_and_gone(cat: SqlCatalog, clock: VirtualClock) -> None:
    t0 = clock.now()
    booted = cat.register_worker("i-0abc", "spot", provider_id="i-0abc", price_per_hour=0.1)
    assert (booted.state, booted.started_at, booted.provider_id) == (WorkerState.BOOTING, t0, "i-0abc")

    clock.advance(30)
    w = cat.heartbeat("i-0abc", "spot", WorkerState.IDLE, host="ip-10-0-0-1", pid=42)
    assert (w.state, w.last_seen, w.started_at, w.host, w.pid) == (
        WorkerState.IDLE,
        t0 + 30,
        t0,
        "ip-10-0-0-1",
        42,
    )
    assert (w.provider_id, w.price_per_hour, w.drain) == ("i-0abc", 0.1, False)  # kept from registration

    clock.advance(5)
    w = cat.heartbeat("i-0abc", "spot", WorkerState.BUSY, job_id="j1", progress=0.4)
    assert (w.state, w.job_id, w.progress) == (WorkerState.BUSY, "j1", 0.4)
    cat.set_drain("i-0abc")
    w = cat.heartbeat("i-0abc", "spot", WorkerState.BUSY, job_id="j1", progress=0.5)
    assert w.drain is True  # the worker reads the drain flag from its heartbeat's answer
    w = cat.heartbeat("i-0abc", "spot", WorkerState.DRAINING)
    with pytest.raises(IllegalTransition):
        cat.heartbeat("i-0abc", "spot", WorkerState.IDLE)
    assert cat.get_worker("i-0abc").state == WorkerState.DRAINING  # type: ignore[union-attr]

    clock.advance(10)
    cat.mark_worker_gone("i-0abc")
    cat.mark_worker_gone("i-0abc")  # idempotent
    gone = cat.get_worker("i-0abc")
    assert gone is not None and (gone.state, gone.stopped_at) == (WorkerState.GONE, t0 + 45)
    assert cat.list_workers() == []
    assert [x.id for x in cat.list_workers(include_gone=True)] == ["i-0abc"]

    clock.advance(100)  # the same id comes back: a new life, not an illegal gone → idle
    again = cat.heartbeat("i-0abc", "spot", WorkerState.IDLE)
    assert (again.state, again.started_at, again.stopped_at, again.drain) == (
        WorkerState.IDLE,
        t0 + 145,
        None,
        False,
    )

    cat.heartbeat("local-1", "local", WorkerState.IDLE)
    assert [x.id for x in cat.list_workers(pool="local")] == ["local-1"]
    assert cat.get_worker("nope") is None
    with pytest.raises(NotFound):
        cat.set_drain("nope")
    with pytest.raises(NotFound):
        cat.mark_worker_gone("nope")


def test_decisions_are_recorded_newest_first(cat: SqlCatalog, clock: VirtualClock) -> None:
    first = cat.record_decision("spot", "step", 2, 0, 0, 2, 0, "queue depth 7 ≥ 2 → 2 instances")
    clock.advance(10)
    second = cat.record_decision("spot", "step", 0, 2, 0, 0, 2, "queue empty for 10 m → scale in")
    explicit = cat.record_decision("edge", "target", 1, 1, 1, 0, 0, "steady", at=clock.now() - 5)
    assert first.at == clock.now() - 10 and first.reason.startswith("queue depth 7")
    assert [d.id for d in cat.recent_decisions()] == [second.id, explicit.id, first.id]
    assert [d.id for d in cat.recent_decisions(limit=1)] == [second.id]
    assert len({first.id, second.id, explicit.id}) == 3


def test_cost_so_far_bills_per_second_with_a_60_s_minimum(cat: SqlCatalog, clock: VirtualClock) -> None:
    t0 = clock.now()
    cat.register_worker("short", "spot", "i-1", price_per_hour=3.6)  # $0.001 per second
    cat.register_worker("long", "spot", "i-2", price_per_hour=3.6)
    cat.register_worker("od", "ondemand", "i-3", price_per_hour=7.2)
    cat.heartbeat("free", "local", WorkerState.IDLE)  # the local box costs nothing
    clock.advance(10)
    cat.mark_worker_gone("short")  # ran 10 s, billed 60 s
    clock.advance(290)
    cat.mark_worker_gone("long")  # ran 300 s
    clock.advance(100)  # "od" still running: 400 s so far
    costs = cat.cost_so_far()
    assert costs["spot"] == pytest.approx(0.060 + 0.300)
    assert costs["ondemand"] == pytest.approx(0.8)
    assert costs["local"] == 0.0
    # since: only time after it; a life that ended before it costs nothing
    since = cat.cost_so_far(since=t0 + 200)
    assert since["spot"] == pytest.approx(0.100)
    assert since["ondemand"] == pytest.approx(0.4)
    # a gone worker that comes back keeps the bill of its earlier life
    cat.heartbeat("short", "spot", WorkerState.IDLE)
    clock.advance(30)
    assert cat.cost_so_far()["spot"] == pytest.approx(0.060 + 0.300 + 0.060)


def test_recent_speeds_from_winning_attempts_per_pool(
    cat: SqlCatalog, alice: User, clock: VirtualClock
) -> None:
    cat.heartbeat("edge-1", "edge", WorkerState.IDLE)
    cat.heartbeat("spot-1", "spot", WorkerState.IDLE)

    def run(worker: str, work_seconds: float | None, wall: float, won: bool = True) -> None:
        job = cat.create_job("transcode", {}, work_seconds=work_seconds)
        att = cat.start_attempt(job.id, worker, 1)
        assert att
        clock.advance(wall)
        if won:
            assert cat.finish_attempt(job.id, att.id, JobState.SUCCEEDED)
        else:
            cat.finish_attempt(job.id, att.id, JobState.QUEUED, error="x")

    run("edge-1", 60.0, 30.0)  # 2x realtime
    run("spot-1", 60.0, 10.0)  # 6x realtime
    run("spot-1", 60.0, 20.0, won=False)  # failures say nothing about speed
    run("edge-1", None, 5.0)  # a job without media seconds (a script) is not a sample
    clock.advance(1)
    run("edge-1", 30.0, 10.0)  # 3x, the most recent
    assert cat.recent_speeds(pool="edge") == pytest.approx([3.0, 2.0])
    assert cat.recent_speeds(pool="spot") == pytest.approx([6.0])
    assert cat.recent_speeds() == pytest.approx([3.0, 6.0, 2.0])
    assert cat.recent_speeds(limit=1) == pytest.approx([3.0])
    assert cat.recent_speeds(pool="nowhere") == []
    assert cat.get_worker("edge-1").jobs_done == 3  # type: ignore[union-attr]


def test_recent_speeds_skip_chunk_bookkeeping(cat: SqlCatalog, clock: VirtualClock) -> None:
    """A chunked source's split, audio part and stitch are no speed samples (issue 11/15): their
    work_seconds (the whole duration, or a token 1.0) would read as 100x or 1/50x."""
    cat.heartbeat("edge-1", "edge", WorkerState.IDLE)

    def run(kind: str, work: float, wall: float, result: dict[str, object] | None = None) -> None:
        job = cat.create_job(kind, {}, work_seconds=work)
        att = cat.start_attempt(job.id, "edge-1", 1)
        assert att
        clock.advance(wall)
        assert cat.finish_attempt(job.id, att.id, JobState.SUCCEEDED, result=result)

    run("transcode", 7200.0, 20.0, result={"split": 4, "root": "x/"})
    run("transcode-audio", 1.0, 45.0)
    run("stitch", 1.0, 10.0)
    run("transcode-chunk", 1800.0, 400.0)
    assert cat.recent_speeds(pool="edge") == pytest.approx([4.5])
