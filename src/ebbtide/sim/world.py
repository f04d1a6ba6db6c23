"""The simulated world's mutable state: jobs, attempts, instances, workers.

Plain mutable classes on purpose: the engine changes them millions of times; results are
published as frozen data (`sim/result.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ebbtide.catalog.states import WorkerState
from ebbtide.queue.base import Delivery
from ebbtide.sim.workloads import JobSpec

# attempt outcomes
WON = "won"  # the first finish: the upload is ready
DUPLICATE = "duplicate"  # ran while another attempt ran, or after the job was ready
KILLED = "killed"  # the scaler stopped its worker mid-job
INTERRUPTED = "interrupted"  # spot reclaimed the worker (or its notice made it give the job back)
SKIPPED = "skipped"  # the completion ledger saw the job done and acked at once
RUNNING = "running"


@dataclass
class Attempt:
    job_id: str
    worker_id: str
    pool: str
    receipt: str
    start: float
    planned_end: float
    end: float | None = None
    outcome: str = RUNNING
    duplicate: bool = False  # started while another attempt of the job ran or after it was ready
    delivery: Delivery | None = None  # the queue lease this attempt holds


@dataclass
class JobRun:
    spec: JobSpec
    ready_at: float | None = None
    dead: bool = False
    running: int = 0  # attempts doing real work now
    attempts: list[Attempt] = field(default_factory=list)
    parts: int = 0  # a chunked upload: how many parts it was split into
    parts_ready: set[str] = field(default_factory=set)
    playable_at: float | None = None  # its first chunk and audio are in (or it is ready)


@dataclass
class Instance:
    """A billed machine (or Fargate task). Billing: per second, at least 60 s."""

    id: str
    pool: str
    price_per_hour: float
    launched_at: float
    ready_at: float | None = None
    ended_at: float | None = None
    busy_seconds: float = 0.0
    worker_id: str | None = None

    def billed_seconds(self, until: float) -> float:
        end = self.ended_at if self.ended_at is not None else until
        return max(60.0, end - self.launched_at) if self.price_per_hour > 0 else end - self.launched_at

    def cost(self, until: float) -> float:
        return self.billed_seconds(until) * self.price_per_hour / 3600.0


@dataclass
class Worker:
    id: str
    pool: str
    instance_id: str
    started_at: float
    state: WorkerState = WorkerState.BOOTING
    attempt: Attempt | None = None
    drain: bool = False
    noticed: bool = False  # a spot interruption notice arrived
    idle_since: float | None = None
    idle_seconds: float = 0.0
    jobs_done: int = 0
    last_seen: float = 0.0
