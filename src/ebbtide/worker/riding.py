"""Riding out a backend outage: the worker's queue and catalog calls retry `BackendUnavailable`.

A worker must not exit because PostgreSQL restarted or Redis blinked: receive, heartbeat, publish,
finish and ack retry with backoff for a bounded time (`worker.outage_budget`), while the handler
(ffmpeg) keeps running on its own thread. Only `BackendUnavailable` is retried — the backends
declare which driver errors mean "down" — so bad input still fails at once. The backend logs the
outage once; this module logs only when a call finally gives up.

`lease_taken_over` decides what a lease that vanished means: the queue may merely have forgotten
the message (a Redis restart without persistence); only the ledger can say that another attempt
now owns the job, and only then is the work cancelled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import replace
from typing import Any, TypeVar, cast

from ebbtide.catalog.base import Catalog
from ebbtide.catalog.states import TERMINAL_JOB_STATES
from ebbtide.errors import BackendUnavailable, NotFound
from ebbtide.outage import reconnect_delay
from ebbtide.queue.base import JobIndex, Queue
from ebbtide.services import Services

log = logging.getLogger(__name__)

T = TypeVar("T")

# calls that only look for work: a stop request ends their retrying at once
INTERRUPTIBLE = frozenset({"receive"})


RETRY_FLOOR = 0.05  # s: never spin, even when the backend says "try now"


def retry_pause(error: BackendUnavailable, failures: int) -> float:
    """Seconds to wait before calling again after `failures` consecutive outage errors (pure)."""
    if error.retry_in is not None:
        return max(RETRY_FLOOR, error.retry_in)
    return reconnect_delay(failures)


def ride_out(
    call: Callable[[], T], what: str, budget: float, stop: threading.Event | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> T:
    """`call()`, retried on BackendUnavailable with backoff until `budget` seconds have passed
    (or `stop` is set); then the last error is raised.

    The pause is the backend's own (`retry_in`: when its backoff lets it try the server again),
    so the first call after that instant reconnects; only an error that does not say falls back
    to `reconnect_delay`. Two backoffs stacked (the backend's and this loop's) used to add up to
    ~10 s of idle time after the server had returned."""
    deadline = monotonic() + budget
    failures = 0
    while True:
        try:
            return call()
        except BackendUnavailable as e:
            failures += 1
            left = deadline - monotonic()
            if left <= 0 or (stop is not None and stop.is_set()):
                log.error("giving up on %s after %.0fs of outage", what, budget, extra={"call": what})
                raise
            pause = min(left, retry_pause(e, failures))
            if stop is not None:
                stop.wait(pause)
            else:
                time.sleep(pause)


class _Riding:
    """Forwards every call to `target`, riding out outages (see module docstring)."""

    def __init__(
        self, target: Any, part: str, budget: float, stop: threading.Event,
        interruptible: Collection[str] = (),
    ) -> None:
        self._target, self._part, self._budget = target, part, budget
        self._stop, self._interruptible = stop, interruptible

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value) or name.startswith("_") or name == "close":
            return value
        stop = self._stop if name in self._interruptible else None
        what = f"{self._part}.{name}"

        def call(*args: Any, **kwargs: Any) -> Any:
            return ride_out(lambda: value(*args, **kwargs), what, self._budget, stop)

        return call


def riding_services(services: Services, budget: float, stop: threading.Event) -> Services:
    """The same services, with the queue and catalog retrying outages for up to `budget` s."""
    return replace(
        services,
        queue=cast(Queue, _Riding(services.queue, "queue", budget, stop, INTERRUPTIBLE)),
        catalog=cast(Catalog, _Riding(services.catalog, "catalog", budget, stop)),
    )


def lease_taken_over(catalog: Catalog, queue: Queue, job_id: str, attempt_id: str) -> bool:
    """After `extend` found no lease: should this attempt stop?

    Yes when the ledger says another attempt owns the job now (or it ended or was deleted), and
    when the queue still holds the job's message under another lease (it lapsed and was
    re-delivered; that attempt is about to start). No when the job is still ours and the queue
    has no message for it: the queue forgot it (a Redis restart without persistence), and the
    ledger will take this attempt's finish."""
    try:
        job = catalog.get_job(job_id)
    except NotFound:
        return True
    if job.attempt_id != attempt_id or job.state in TERMINAL_JOB_STATES:
        return True
    if isinstance(queue, JobIndex):
        return job_id in queue.live_job_ids()
    return False  # a queue that cannot list (SQS): the ledger alone decides, at the next beat
