"""Lifecycle state machines. Illegal transitions raise `IllegalTransition`."""

from __future__ import annotations

from enum import StrEnum

from ebbtide.errors import IllegalTransition


class MediaState(StrEnum):
    UPLOADED = "uploaded"
    QUEUED = "queued"
    TRANSCODING = "transcoding"
    TRANSCODED = "transcoded"
    COMPLETE = "complete"
    FAILED = "failed"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD = "dead"


class WorkerState(StrEnum):
    BOOTING = "booting"
    IDLE = "idle"
    BUSY = "busy"
    DRAINING = "draining"
    GONE = "gone"


M, J, W = MediaState, JobState, WorkerState

MEDIA_TRANSITIONS: dict[MediaState, frozenset[MediaState]] = {
    M.UPLOADED: frozenset({M.QUEUED, M.FAILED}),
    # a retried attempt goes back through queued; a lapsed lease re-delivers while transcoding
    M.QUEUED: frozenset({M.TRANSCODING, M.FAILED}),
    M.TRANSCODING: frozenset({M.QUEUED, M.TRANSCODING, M.TRANSCODED, M.FAILED}),
    M.TRANSCODED: frozenset({M.COMPLETE, M.FAILED}),
    M.COMPLETE: frozenset(),
    M.FAILED: frozenset({M.QUEUED}),  # redrive from the dead letters
}

JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    J.QUEUED: frozenset({J.RUNNING, J.FAILED, J.DEAD}),
    J.RUNNING: frozenset({J.RUNNING, J.QUEUED, J.SUCCEEDED, J.FAILED, J.DEAD}),
    J.SUCCEEDED: frozenset(),
    J.FAILED: frozenset({J.QUEUED}),
    J.DEAD: frozenset({J.QUEUED}),
}

WORKER_TRANSITIONS: dict[WorkerState, frozenset[WorkerState]] = {
    W.BOOTING: frozenset({W.BOOTING, W.IDLE, W.BUSY, W.DRAINING, W.GONE}),  # fleet-registered, then reports
    W.IDLE: frozenset({W.IDLE, W.BUSY, W.DRAINING, W.GONE}),
    W.BUSY: frozenset({W.BUSY, W.IDLE, W.DRAINING, W.GONE}),
    W.DRAINING: frozenset({W.DRAINING, W.GONE}),
    W.GONE: frozenset(),
}


def check_media(old: MediaState, new: MediaState) -> None:
    if new not in MEDIA_TRANSITIONS[old]:
        raise IllegalTransition(f"media cannot go from {old} to {new}")


def check_job(old: JobState, new: JobState) -> None:
    if new not in JOB_TRANSITIONS[old]:
        raise IllegalTransition(f"job cannot go from {old} to {new}")


def check_worker(old: WorkerState, new: WorkerState) -> None:
    if new not in WORKER_TRANSITIONS[old]:
        raise IllegalTransition(f"worker cannot go from {old} to {new}")


TERMINAL_JOB_STATES = frozenset({J.SUCCEEDED, J.FAILED, J.DEAD})
