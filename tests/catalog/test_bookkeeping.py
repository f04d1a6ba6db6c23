"""Crashed attempts are closed as lost; workers without heartbeats are marked gone (both backends)."""

from __future__ import annotations

from ebbtide.catalog import SqlCatalog
from ebbtide.catalog.records import User
from ebbtide.catalog.states import JobState, MediaState, WorkerState
from ebbtide.clock import VirtualClock


def test_gone_worker_closes_its_attempt_as_lost(cat: SqlCatalog, alice: User) -> None:
    media = cat.create_media(alice.id, "clip", "k", 10)
    job = cat.create_job("transcode", {}, owner_id=alice.id, media_id=media.id)
    cat.heartbeat("w-1", "local", WorkerState.BUSY)
    attempt = cat.start_attempt(job.id, "w-1", 1)
    assert attempt is not None
    cat.mark_worker_gone("w-1")  # the fleet found its process dead (kill -9)
    [a] = cat.attempts(job.id)
    assert a.outcome == "lost" and a.finished_at is not None and "w-1" in (a.error or "")
    assert cat.get_job(job.id).state == JobState.QUEUED  # picked up again by the next delivery
    assert cat.get_media(media.id).state == MediaState.QUEUED
    # if the worker was only partitioned and finishes after all, its finish still counts once
    assert cat.finish_attempt(job.id, attempt.id, JobState.SUCCEEDED) is True
    assert cat.get_job(job.id).state == JobState.SUCCEEDED


def test_silent_workers_are_reaped_and_talking_ones_kept(
    cat: SqlCatalog, alice: User, clock: VirtualClock
) -> None:
    job = cat.create_job("command", {"command": "true"}, owner_id=alice.id)
    cat.heartbeat("silent", "edge", WorkerState.BUSY, job_id=job.id)
    cat.heartbeat("talking", "edge", WorkerState.IDLE)
    cat.start_attempt(job.id, "silent", 1)
    clock.advance(200)
    cat.heartbeat("talking", "edge", WorkerState.IDLE)
    clock.advance(150)
    assert cat.reap_silent_workers(300) == ["silent"]
    assert cat.reap_silent_workers(300) == []  # idempotent
    silent, talking = cat.get_worker("silent"), cat.get_worker("talking")
    assert silent is not None and silent.state == WorkerState.GONE
    assert talking is not None and talking.state == WorkerState.IDLE
    assert [a.outcome for a in cat.attempts(job.id)] == ["lost"]
    assert cat.get_job(job.id).state == JobState.QUEUED


def test_a_newer_attempt_keeps_the_job_when_an_old_worker_is_reaped(cat: SqlCatalog, alice: User) -> None:
    job = cat.create_job("command", {"command": "true"}, owner_id=alice.id)
    cat.heartbeat("old", "edge", WorkerState.BUSY)
    cat.heartbeat("new", "edge", WorkerState.BUSY)
    cat.start_attempt(job.id, "old", 1)
    newer = cat.start_attempt(job.id, "new", 2)  # the old lease lapsed and was re-delivered
    assert newer is not None
    cat.mark_worker_gone("old")
    job_now = cat.get_job(job.id)
    assert job_now.state == JobState.RUNNING and job_now.attempt_id == newer.id
    assert sorted(a.outcome or "open" for a in cat.attempts(job.id)) == ["lost", "open"]
