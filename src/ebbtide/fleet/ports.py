"""The small ports the controller reads and writes besides providers.

Production passes catalog/queue-backed ones (fleet/sources.py); the simulator passes its own
in-memory ones. Keeping them this narrow is what lets the simulator run the real controller.
"""

from __future__ import annotations

from typing import Protocol

from ebbtide.fleet.causes import DecisionRecord
from ebbtide.fleet.model import QueueView, WorkerView


class QueueSource(Protocol):
    def observe_queue(self) -> QueueView:
        """Depth plus work estimates (media seconds waiting and running, arrival rate)."""
        ...


class WorkerSource(Protocol):
    def workers(self) -> list[WorkerView]:
        """Every worker not gone, in every pool, as last reported."""
        ...

    def speeds(self) -> dict[str, float]:
        """Measured media seconds per wall second, per pool (pools with no history omitted)."""
        ...

    def register(self, worker_id: str, pool: str, provider_id: str | None, price_per_hour: float) -> None:
        """A launched or adopted worker, booting until it first reports."""
        ...

    def set_drain(self, worker_id: str, drain: bool = True) -> None: ...

    def mark_gone(self, worker_id: str) -> None: ...


class DecisionRecorder(Protocol):
    def record(self, rec: DecisionRecord) -> None:
        """Keep one pool's decision; text for people is rendered from it (`causes.render`)."""
        ...
