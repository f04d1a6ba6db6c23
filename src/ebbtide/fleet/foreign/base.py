"""The port for pools whose workers are the user's own processes (docs/foreign-pools.md).

Foreign workers send no ebbtide heartbeats. What the controller needs from them — is the worker up
(healthy) and is it busy (may it be retired) — is read from the queue they consume (BullMQ's
worker registry and job locks) or from the platform (ECS task scale-in protection, ASG instance
protection). A `BusyProbe` answers both for a pool's provider `Instance`s in one call;
`ForeignWorkerSource` (fleet/foreign/source.py) turns the answer into the `WorkerView`s the
controller and the policies already use, so a foreign pool is steered unchanged.

When busy-ness cannot be known for an instance (`busy is None`), the queue's aggregate in-flight
count decides for it: the instance counts as busy while anything is in flight, so ebbtide scales
in only when nothing is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from ebbtide.fleet.providers.base import Instance


class BusyEvidence(StrEnum):
    """How a probe knows what it says about one instance's busy-ness."""

    LOCK_HELD = "lock-held"  # its worker holds a live lock on an active job (BullMQ)
    NO_LOCK = "no-lock"  # its worker is connected and holds no lock: idle, known
    PROTECTED = "protected"  # platform scale-in protection is on (set by the worker or by ebbtide)
    UNPROTECTED = "unprotected"  # protection is off and the worker manages it: idle, known
    IN_FLIGHT_AGGREGATE = "in-flight-aggregate"  # only the queue's total in flight is known
    UNKNOWN = "unknown"  # nothing known (the instance is not in the queue's view)


@dataclass(frozen=True)
class ForeignView:
    """What the queue (or platform) says about one instance's worker.

    `connected`: the worker is known to the queue now (healthy). `busy`: holds work now; None when
    it cannot be known (then `how` says what was tried). `jobs`: the queue's ids of the jobs it
    holds, when known (for logs and status only).
    """

    instance_id: str
    connected: bool
    busy: bool | None
    how: BusyEvidence
    jobs: tuple[str, ...] = ()


_NO_VIEWS: Mapping[str, ForeignView] = MappingProxyType({})


@dataclass(frozen=True)
class ProbeResult:
    """One probe of a pool: a view per instance id asked about, and the queue's aggregate in
    flight (BullMQ `active`, SQS ApproximateNumberOfMessagesNotVisible)."""

    views: Mapping[str, ForeignView] = field(default_factory=lambda: _NO_VIEWS)
    in_flight: int = 0

    def view(self, instance_id: str) -> ForeignView:
        """The probe's view of this instance; one it did not report is unknown and disconnected."""
        got = self.views.get(instance_id)
        if got is not None:
            return got
        return ForeignView(instance_id, False, None, BusyEvidence.UNKNOWN)


@runtime_checkable
class BusyProbe(Protocol):
    """Reads, without writing to the user's queue, whether each instance's worker is connected
    and busy. Raises on a backend failure (the controller turns it into the pool's error)."""

    def probe(self, instances: Sequence[Instance]) -> ProbeResult: ...

    def close(self) -> None: ...
