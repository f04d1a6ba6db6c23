"""A short in-memory history of queue depth and workers, for the fleet dashboard's chart.

Sampled on a background thread while the app runs (and on demand when a request finds the last
sample stale), kept in a bounded ring: the dashboard needs the last hour, not a time-series DB.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from ebbtide.catalog.states import WorkerState
from ebbtide.services import Services
from ebbtide.web.periodic import Periodic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    at: float
    visible: int
    in_flight: int
    dead: int
    delayed: int  # waiting to be retried: pending work, drawn with the queue
    workers: int
    busy: int


def take_sample(services: Services) -> Sample:
    stats = services.queue.stats()
    workers = services.catalog.list_workers()
    live = [w for w in workers if w.state != WorkerState.GONE]
    busy = sum(1 for w in live if w.state == WorkerState.BUSY)
    return Sample(
        services.clock.now(), stats.visible, stats.in_flight, stats.dead, stats.delayed, len(live), busy
    )


class History(Periodic):
    thread_name = "fleet-history"

    def __init__(self, services: Services, interval: float = 5.0, keep: int = 720) -> None:
        super().__init__(max(0.5, interval))
        self.services = services
        self._ring: deque[Sample] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def sample(self) -> None:
        try:
            s = take_sample(self.services)
        except Exception as e:  # a sampler must outlive a database hiccup
            log.warning("fleet sample failed", extra={"error": str(e)})
            return
        with self._lock:
            self._ring.append(s)

    def points(self, fresh_within: float = 2.0) -> list[dict[str, Any]]:
        with self._lock:
            last = self._ring[-1].at if self._ring else None
        if last is None or self.services.clock.now() - last > fresh_within:
            self.sample()
        with self._lock:
            return [asdict(s) for s in self._ring]

    def tick(self) -> None:
        self.sample()
