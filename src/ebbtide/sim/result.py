"""What one simulated run measured, as frozen data (the report's and the tests' input)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ebbtide.config.sections import DeadlinePolicyConfig
from ebbtide.sim import world as W
from ebbtide.sim.bound import lower_bound
from ebbtide.sim.engine import START, Engine, Sample


@dataclass(frozen=True)
class AttemptBar:
    job_id: str
    pool: str
    worker_id: str
    start: float  # seconds from the start of the run
    end: float
    outcome: str


@dataclass(frozen=True)
class RunResult:
    scenario: str
    setup: str
    seed: int
    jobs: int
    ready: int
    lost: int  # never became ready (dead-lettered, or still pending at the horizon)
    dead_lettered: int  # messages moved to the dead letters
    total_cost: float
    idle_cost: float  # paid time not running a job: boot, idle, the 60 s minimum
    lower_bound: float  # least any setup pays with every upload ready within `bound_within` (sim/bound.py)
    bound_within: float  # seconds: the deadline policy's default target_ready
    own_bound: float  # the same bound at this run's own longest upload→ready (what it must pay)
    mean_ready: float | None  # seconds from upload to ready
    p95_ready: float | None
    max_ready: float | None
    makespan: float | None  # first upload to last ready
    dup_jobs: int  # jobs that ran more than once at the same time or after they were ready
    wasted_minutes: float  # worker-minutes of duplicate, killed and interrupted attempts
    killed: int  # attempts stopped mid-job by the scaler
    interrupted: int  # attempts lost to spot reclaims
    paid_hours: float
    receive_calls: int  # ReceiveMessage calls, estimated from idle time and the poll mode
    retired_busy: int  # retires that hit a busy worker (the real controller must never do this)
    events: int
    ticks: int
    sim_seconds: float
    timeline: tuple[Sample, ...] = field(default=(), repr=False)
    bars: tuple[AttemptBar, ...] = field(default=(), repr=False)
    decisions: tuple[tuple[float, str, int, str], ...] = field(default=(), repr=False)
    p95_playable: float | None = None  # upload to first playable (a chunked upload's first chunk)

    @property
    def cost_ratio(self) -> float | None:
        """cost / bound; None when the bound is $0 (a free fleet can keep every promise)."""
        return self.total_cost / self.lower_bound if self.lower_bound > 0 else None

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("timeline", "bars", "decisions"):
            d.pop(k)
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))
    return s[k]


def measure(
    engine: Engine, scenario: str, seed: int, decisions: list[tuple[float, str, int, str]] | None = None,
    retired_busy: int = 0,
) -> RunResult:
    e = engine
    end = e.now
    uploads = e.uploads()
    latencies = [j.ready_at - (START + j.spec.arrival) for j in uploads if j.ready_at is not None]
    arrivals = [START + j.spec.arrival for j in uploads]
    readies = [j.ready_at for j in uploads if j.ready_at is not None]
    playable = [
        (j.playable_at if j.playable_at is not None else j.ready_at) - (START + j.spec.arrival)
        for j in uploads
        if j.ready_at is not None
    ]
    total = sum(i.cost(end) for i in e.instances.values())
    busy_cost = sum(i.busy_seconds * i.price_per_hour / 3600 for i in e.instances.values())
    within = DeadlinePolicyConfig().target_ready
    ready_specs = [j.spec for j in e.jobs.values() if j.ready_at is not None]
    own = lower_bound(ready_specs, e.fleet, max(latencies)) if latencies else 0.0
    wasted = 0.0
    dup_jobs = set()
    for a in e.attempts:
        stop = a.end if a.end is not None else end
        if a.duplicate:
            dup_jobs.add(a.job_id)
        if a.duplicate or a.outcome in (W.DUPLICATE, W.KILLED, W.INTERRUPTED):
            wasted += (stop - a.start) / 60
    idle_seconds = sum(
        w.idle_seconds + (end - w.idle_since if w.idle_since is not None else 0.0) for w in e.workers.values()
    )
    gap = e.setup.short_poll_gap if e.setup.wait <= 0 else e.setup.wait
    return RunResult(
        scenario=scenario,
        setup=e.setup.name,
        seed=seed,
        jobs=len(uploads),
        ready=len(latencies),
        lost=len(uploads) - len(latencies),
        dead_lettered=e.queue.stats().dead,
        total_cost=total,
        idle_cost=max(0.0, total - busy_cost),
        lower_bound=lower_bound(e.specs, e.fleet, within),
        bound_within=within,
        own_bound=own,
        mean_ready=sum(latencies) / len(latencies) if latencies else None,
        p95_ready=percentile(latencies, 0.95),
        max_ready=max(latencies) if latencies else None,
        makespan=(max(readies) - min(arrivals)) if readies else None,
        dup_jobs=len(dup_jobs),
        wasted_minutes=wasted,
        killed=sum(1 for a in e.attempts if a.outcome == W.KILLED),
        interrupted=sum(1 for a in e.attempts if a.outcome == W.INTERRUPTED),
        paid_hours=sum(i.billed_seconds(end) for i in e.instances.values() if i.price_per_hour > 0) / 3600,
        receive_calls=int(e.queue.receives + idle_seconds / gap),
        retired_busy=retired_busy,
        events=e.events,
        ticks=e.ticks,
        sim_seconds=end - START,
        timeline=tuple(e.samples),
        bars=tuple(
            AttemptBar(
                a.job_id,
                a.pool,
                a.worker_id,
                a.start - START,
                (a.end if a.end is not None else end) - START,
                a.outcome,
            )
            for a in e.attempts
        ),
        decisions=tuple(decisions or ()),
        p95_playable=percentile(playable, 0.95),
    )
