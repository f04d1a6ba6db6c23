"""Keeping the catalog and the queue in step, idempotently (safe to run from many processes).

- `resend_stranded`: a job `queued` in the catalog whose message is gone (a Redis without
  persistence restarted, an SQS endpoint came back empty, or the process died between committing
  the row and sending) is re-sent once it has waited `older_than` seconds. A duplicate message is
  harmless: the ledger lets one attempt finish the job and a worker skips a finished job.
- `reap_silent`: workers silent past a timeout are marked gone and their attempts closed as lost.
- `reconcile_dead_letters`: a job whose message the queue dead-lettered by itself (received
  `max_receives` times, every worker died or lost its lease) would sit `running` forever with its
  media `transcoding`; this marks it dead with a readable reason.

Workers reconcile dead letters when they start; the fleet's queue source runs all three while
observing (fleet/sources.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ebbtide.catalog.base import Catalog
from ebbtide.catalog.records import Job
from ebbtide.catalog.states import TERMINAL_JOB_STATES, JobState
from ebbtide.errors import NotFound
from ebbtide.queue.base import BadMessage, JobIndex, Queue, decode_body
from ebbtide.worker.messages import JobMessage

RESEND_SCAN = 1000  # queued jobs looked at per sweep

log = logging.getLogger(__name__)


def reconcile_dead_letters(queue: Queue, catalog: Catalog, limit: int = 100) -> int:
    """Returns how many jobs were marked dead."""
    marked = 0
    for dead in queue.dead_letters(limit):
        try:
            job_id = str(decode_body(dead.body)["job_id"])
            job = catalog.get_job(job_id)
        except (BadMessage, NotFound):
            continue
        if job.state in TERMINAL_JOB_STATES:
            continue
        error = job.error or (
            f"the job was moved to the dead letters after {dead.receive_count} tries ({dead.reason}); "
            "its workers stopped without finishing it — check the worker logs, then redrive it"
        )
        catalog.mark_dead(job.id, error)
        marked += 1
        log.warning("job dead-lettered by the queue", extra={"job_id": job.id, "reason": dead.reason})
    return marked


def stranded(
    queued: Sequence[Job], live: set[str] | None, backlog: int, now: float, older_than: float
) -> list[Job]:
    """Which queued jobs have lost their message (pure). `live` is None for a queue that cannot
    list its messages: then only an empty queue proves the older jobs are stranded."""
    old = [j for j in queued if now - j.updated_at >= older_than]
    if live is None:
        return old if backlog == 0 else []
    return [j for j in old if j.id not in live]


def resend_stranded(queue: Queue, catalog: Catalog, older_than: float, now: float) -> int:
    """Re-send stranded jobs; returns how many."""
    live = queue.live_job_ids() if isinstance(queue, JobIndex) else None  # before the list: see `stranded`
    queued = catalog.list_jobs(state=JobState.QUEUED, limit=RESEND_SCAN)
    if not any(now - j.updated_at >= older_than for j in queued):
        return 0
    backlog = queue.stats().backlog if live is None else 0
    lost = stranded(queued, live, backlog, now, older_than)
    bucket = int(now // max(1.0, older_than))  # two sweeps in one period send once; a later period may again
    for job in lost:
        queue.send(JobMessage(job.id, job.kind, job.media_id).body(), dedup_id=f"resend-{job.id}-{bucket}")
    if lost:
        log.warning(
            "re-sent %d job(s) queued without a message", len(lost), extra={"jobs": [j.id for j in lost[:20]]}
        )
    return len(lost)


def reap_silent(catalog: Catalog, timeout: float) -> list[str]:
    return catalog.reap_silent_workers(timeout)


def redrive(queue: Queue, catalog: Catalog, message_ids: Sequence[str] | None = None) -> tuple[int, int]:
    """`ebbtide dlq redrive`: the catalog first (dead or failed job → queued, its media → queued),
    then the messages, so the worker that receives one finds a job to run, not a finished one.
    Returns (messages moved, jobs requeued)."""
    wanted = None if message_ids is None else set(message_ids)
    requeued = 0
    for dead in queue.dead_letters(limit=10_000):
        if wanted is not None and dead.message_id not in wanted:
            continue
        try:
            job = catalog.get_job(str(decode_body(dead.body)["job_id"]))
        except (BadMessage, NotFound):
            continue  # moved anyway: the worker drops a message whose job is gone
        if job.state in (JobState.DEAD, JobState.FAILED, JobState.RUNNING):
            catalog.requeue(job.id)
            requeued += 1
    return queue.redrive(message_ids), requeued
