"""The heartbeat holds a lease for a job 3x longer than the lease; without it the job is re-delivered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from worker_helpers import WorkerThread, stop_all, wait_for

from ebbtide.catalog.states import JobState
from ebbtide.worker.intake import submit_job

LEASE = 1.0


@pytest.mark.parametrize("heartbeat", [True, False], ids=["heartbeat", "no-heartbeat"])
def test_long_job_and_the_lease(make_env: Callable[..., Any], heartbeat: bool) -> None:
    _, services, _ = make_env(worker={"heartbeat": heartbeat}, queue={"lease": LEASE})
    job = submit_job(services, "command", {"command": f"sleep {LEASE * 3}"})
    workers = [WorkerThread(services, worker_id=f"w{i}-{heartbeat}").start() for i in range(2)]
    try:
        done = lambda: services.catalog.get_job(job.id).state == JobState.SUCCEEDED  # noqa: E731
        wait_for(done, 15, "the job to succeed")
        # let a lapsed lease (if any) be taken and the duplicate attempt finish
        wait_for(lambda: services.queue.stats().backlog == 0, 15, "the queue to empty")
        wait_for(lambda: all(a.finished_at for a in services.catalog.attempts(job.id)), 10, "attempts to end")
    finally:
        stop_all(workers)
    attempts = services.catalog.attempts(job.id)
    assert sum(a.won for a in attempts) == 1  # the ledger counts it once either way
    if heartbeat:
        assert len(attempts) == 1, attempts
        assert services.catalog.get_job(job.id).attempts == 1
    else:
        assert len(attempts) >= 2, "without the heartbeat the lapsed lease should re-deliver the job"
        assert len({a.worker_id for a in attempts}) == 2  # the second worker got it while the first ran
        assert any(a.outcome == "duplicate" for a in attempts)
