"""Jobs whose message the queue dead-lettered by itself, which the catalog does not know yet.

A queue moves a message to the dead letters when it has been received `max_receives` times; if
every one of those workers died (or lost its lease) nobody reported the job dead, and it would sit
`running` forever with its media `transcoding`. This marks such jobs dead with a readable reason.

Workers run it when they start; the fleet's queue source runs it every minute while observing.
"""

from __future__ import annotations

import logging

from ebbtide.catalog.base import Catalog
from ebbtide.catalog.states import TERMINAL_JOB_STATES
from ebbtide.errors import NotFound
from ebbtide.queue.base import BadMessage, Queue, decode_body

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
