"""What the fleet controller sees and decides, as frozen data.

Policies are pure functions `Observation -> Decision`; the controller builds the observation from
the ports (queue stats, catalog heartbeats, provider inventory) and the simulator builds it from
its own in-memory world. Keeping these types plain data is what lets both drive the same policies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ebbtide.catalog.states import WorkerState
from ebbtide.config.sections import PoolConfig
from ebbtide.fleet.causes import Cause
from ebbtide.queue.base import QueueStats

_EMPTY: Mapping[str, Any] = MappingProxyType({})

# Seconds of job arrivals the arrival rate is taken over (production and simulator alike).
ARRIVAL_WINDOW = 900.0

# Worker states that count as capacity (a draining worker is on its way out).
LIVE_STATES = frozenset({WorkerState.BOOTING, WorkerState.IDLE, WorkerState.BUSY})


@dataclass(frozen=True)
class WorkerView:
    id: str
    pool: str
    state: WorkerState
    started_at: float
    last_seen: float
    job_id: str | None = None
    progress: float = 0.0  # of the current job, 0..1
    job_work_seconds: float | None = None  # media seconds of the current job, when known
    drain: bool = False
    provider_id: str | None = None  # instance id, task arn, pid: what the provider retires by
    pid: int | None = None

    @property
    def busy(self) -> bool:
        return self.state == WorkerState.BUSY or self.job_id is not None

    @property
    def live(self) -> bool:
        """Counts as capacity: booting, idle or busy, and not asked to drain."""
        return self.state in LIVE_STATES and not self.drain

    @property
    def remaining_work_seconds(self) -> float | None:
        if self.job_work_seconds is None:
            return None
        return max(0.0, self.job_work_seconds * (1.0 - self.progress))


@dataclass(frozen=True)
class WaitingJob:
    """One waiting job as the deadline policy plans it."""

    work_seconds: float | None  # media seconds; None: unknown (the policy's default)
    upload: str  # what the user waits for: the media (a chunked upload's parts share it), else the job
    age: float  # seconds since it was queued


@dataclass(frozen=True)
class QueueView:
    """Queue depth plus the fleet's estimates of how much media those jobs hold.

    Work is in media seconds; `*_unknown` count jobs whose duration is not known (policies price
    them at their own default). `arrival_rate` is jobs per second over a recent window.
    """

    visible: int = 0
    in_flight: int = 0
    delayed: int = 0
    dead: int = 0
    oldest_age: float | None = None
    waiting_work_seconds: float = 0.0
    running_work_seconds: float = 0.0
    waiting_unknown: int = 0
    running_unknown: int = 0
    arrival_rate: float = 0.0
    # uploads the waiting jobs belong to (a chunked upload's parts are one); 0 = one per job
    waiting_uploads: int = 0
    # the first waiting jobs in queue order, when the source knows them (else counts and sums only)
    waiting_jobs: tuple[WaitingJob, ...] = ()

    @classmethod
    def from_stats(cls, stats: QueueStats, **estimates: Any) -> QueueView:
        return cls(
            visible=stats.visible,
            in_flight=stats.in_flight,
            delayed=stats.delayed,
            dead=stats.dead,
            oldest_age=stats.oldest_age,
            **estimates,
        )

    @property
    def backlog(self) -> int:
        return self.visible + self.in_flight + self.delayed


@dataclass(frozen=True)
class LaunchFailure:
    at: float
    message: str
    requested: int = 1
    launched: int = 0


@dataclass(frozen=True)
class PoolView:
    config: PoolConfig
    workers: tuple[WorkerView, ...] = ()
    launch_failures: tuple[LaunchFailure, ...] = ()  # recent ones, oldest first
    last_launch_at: float | None = None
    last_retire_at: float | None = None
    provider_error: str | None = None  # the provider is failing: no launches until it recovers

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def static(self) -> bool:
        return self.config.provider == "static"

    @property
    def free(self) -> bool:
        return self.config.price_per_hour == 0

    @property
    def live(self) -> tuple[WorkerView, ...]:
        return tuple([w for w in self.workers if w.state in LIVE_STATES and not w.drain])

    @property
    def running(self) -> int:
        """Capacity now and on its way: live workers, booting ones included (a launch registers
        its worker at once, so there is no separate count of pending launches)."""
        return len(self.live)

    @property
    def busy(self) -> int:
        return sum(1 for w in self.live if w.busy)

    @property
    def idle(self) -> int:
        return sum(1 for w in self.live if w.state == WorkerState.IDLE and not w.busy)

    def failed_since(self, t: float) -> bool:
        return any(f.at >= t for f in self.launch_failures)


@dataclass(frozen=True)
class Observation:
    now: float
    queue: QueueView
    pools: tuple[PoolView, ...]  # priority order, as configured
    speeds: Mapping[str, float] = field(default_factory=lambda: _EMPTY)  # measured, per pool
    memory: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)  # the policy's own state

    def pool(self, name: str) -> PoolView:
        for p in self.pools:
            if p.name == name:
                return p
        raise KeyError(name)

    def speed(self, pool: PoolView) -> float:
        """Measured media seconds per wall second, else the configured guess."""
        s = self.speeds.get(pool.name)
        return s if s and s > 0 else pool.config.speed


@dataclass(frozen=True)
class PoolDecision:
    pool: str
    desired: int
    reason: str  # the policy's figures, for people; the cause is the data
    cause: Cause = Cause.STEADY


@dataclass(frozen=True)
class Decision:
    """`stable_until`: the policy's promise that, as long as nothing it observes changes but the
    clock (no arrival, no job start or finish, no worker coming or going), it would decide the
    same until then. None promises nothing. A simulator may skip the ticks in between."""

    pools: tuple[PoolDecision, ...]
    memory: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    stable_until: float | None = None

    def desired(self, pool: str) -> int:
        for d in self.pools:
            if d.pool == pool:
                return d.desired
        raise KeyError(pool)
