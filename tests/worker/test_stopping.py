"""Stopping safely: SIGTERM and spot notices release the job at once; ECS protection follows busy.

The IMDS and ECS agent endpoints are small local HTTP servers (worker_servers.py) because moto
implements neither; everything else is real (worker processes, SQLite queue and catalog, store).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from worker_helpers import WorkerThread, spawn_worker, stop_all, wait_for, worker_logs
from worker_servers import ecs_agent_server, imds_server

from ebbtide.catalog.states import JobState
from ebbtide.services import Services
from ebbtide.worker.intake import submit_job


def _running(services: Services, job_id: str) -> bool:
    return services.catalog.get_job(job_id).state == JobState.RUNNING


def _released(services: Services, job_id: str) -> bool:
    s = services.queue.stats()
    return s.in_flight == 0 and s.visible == 1 and services.catalog.get_job(job_id).state == JobState.QUEUED


def _finish_elsewhere(services: Services, job_id: str) -> None:
    other = WorkerThread(services, worker_id="finisher").start()
    try:
        done = lambda: services.catalog.get_job(job_id).state == JobState.SUCCEEDED  # noqa: E731
        wait_for(done, 20, "another worker to finish the job")
    finally:
        stop_all([other])
    attempts = services.catalog.attempts(job_id)
    assert [a.outcome for a in attempts] == ["failed", "succeeded"]
    assert attempts[1].worker_id == "finisher" and attempts[1].won
    assert attempts[0].error and "worker stopped" in attempts[0].error


def test_sigterm_mid_job_releases_it_for_another_worker(make_env: Callable[..., Any]) -> None:
    _, services, config = make_env(worker={"grace": 1})
    job = submit_job(services, "command", {"command": "sleep 2"})
    proc = spawn_worker(config)
    wait_for(lambda: _running(services, job.id), 20, "the worker to start the job")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    wait_for(lambda: _released(services, job.id), 5, "the message to be released")
    released_after = time.monotonic() - t0
    assert proc.wait(10) == 0, worker_logs(config)
    assert 0.9 <= released_after < 5, released_after  # waited out the 1 s grace, then let go
    assert "SIGTERM" in (services.catalog.get_job(job.id).error or "")
    _finish_elsewhere(services, job.id)


def test_sigterm_lets_a_short_job_finish_within_grace(make_env: Callable[..., Any]) -> None:
    _, services, config = make_env(worker={"grace": 20})
    job = submit_job(services, "command", {"command": "sleep 1"})
    proc = spawn_worker(config)
    wait_for(lambda: _running(services, job.id), 20, "the worker to start the job")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0, worker_logs(config)
    assert services.catalog.get_job(job.id).state == JobState.SUCCEEDED
    assert len(services.catalog.attempts(job.id)) == 1
    assert services.queue.stats().backlog == 0


def test_spot_notice_mid_job_releases_it_without_the_grace(make_env: Callable[..., Any]) -> None:
    with imds_server() as imds:
        _, services, config = make_env(
            worker={"grace": 120, "spot_watch": "auto", "imds_url": imds.url, "spot_poll": 0.2}
        )
        job = submit_job(services, "command", {"command": "sleep 2"})
        proc = spawn_worker(config)
        wait_for(lambda: _running(services, job.id), 20, "the worker to start the job")
        wait_for(lambda: imds.polls >= 1, 5, "the spot watcher to poll")  # `auto` found IMDS
        t0 = time.monotonic()
        imds.notice = {"action": "terminate", "time": "2030-01-01T00:02:00Z"}
        wait_for(lambda: _released(services, job.id), 5, "the message to be released")
        assert time.monotonic() - t0 < 5
        assert proc.wait(10) == 0, worker_logs(config)
        assert "spot interruption" in (services.catalog.get_job(job.id).error or "")
    _finish_elsewhere(services, job.id)


def test_ecs_protection_on_while_busy_off_while_idle(
    make_env: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    with ecs_agent_server() as agent:
        monkeypatch.setenv("ECS_AGENT_URI", agent.url)
        _, services, _ = make_env(worker={"ecs_protection": "auto"})
        w = WorkerThread(services, worker_id="ecs-task").start()
        try:
            wait_for(lambda: agent.enabled is False, 5, "protection off at start (idle)")
            job = submit_job(services, "command", {"command": "sleep 1"})
            wait_for(lambda: agent.enabled is True, 10, "protection on while busy")
            assert _running(services, job.id)
            assert agent.states[-1]["ExpiresInMinutes"] > 0
            wait_for(lambda: services.catalog.get_job(job.id).state == JobState.SUCCEEDED, 10, "the job")
            wait_for(lambda: agent.enabled is False, 5, "protection off once idle")
        finally:
            stop_all([w])
        assert [s["ProtectionEnabled"] for s in agent.states] == [False, True, False]
