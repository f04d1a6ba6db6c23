"""ebbtide's own policy: buy capacity only while the waiting it saves is worth its price.

It answers the question seeds 000 and 001 answer by hand ("the Jetson handles 80-85 %, AWS is
burst capacity") with a small plan: the waiting jobs are handed, oldest first, to whichever worker
is free first — free pools' workers (the static edge box, local workers), paid workers already
running, and workers a launch would add after their boot time — and a job is late by however much
it is ready after `target_ready` from the oldest upload.

The trade-off is stated, not implied: `wait_value_per_hour` is what one hour of one upload's
lateness is worth to the user. Free capacity is always used. Paid capacity is added cheapest
first (a running worker before a new launch of the same pool) while the lateness it saves, at
that value, is worth more than the worker costs for the job it takes (its boot, billed, plus the
job's time at its price); then the dearest picks that the rest make unnecessary are dropped. So
the target is always reachable in the sense that matters: a late plan buys exactly the capacity
whose price the user said the saved waiting is worth, whichever pool that is (a premium
on-demand worker too, when it saves enough), and nothing when waiting is cheaper. A very large
value keeps the target whenever any set of pools can; 0 never pays for speed.

An idle paid worker is kept warm only while the expected wait for the next job costs less than a
cold start (boot time, billed at least a minute), which replaces seed 000's fixed 25-minute
scale-in cooldown.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

from ebbtide.catalog.states import WorkerState
from ebbtide.config.sections import DeadlinePolicyConfig
from ebbtide.fleet.causes import Cause
from ebbtide.fleet.model import Decision, Observation, PoolDecision, PoolView, WorkerView
from ebbtide.fleet.policies.common import clamp, growable, pool_cap

MIN_BILLED = 60.0  # seconds a cloud launch is billed at least (EC2 per-second billing)
MAX_PLAN_JOBS = 256  # jobs planned one by one; later ones are late under any plan anyway
_STILL_WORKING = (WorkerState.IDLE, WorkerState.BUSY)


@dataclass(frozen=True)
class _Slot:
    """One worker in the plan: free from `free_at` on, at `speed` media seconds per second."""

    pool: str
    rank: int  # position of its pool in the configured order
    price: float
    free_at: float
    speed: float
    new: bool = False  # a launch this tick would add


def _busy_until(obs: Observation, pool: PoolView, w: WorkerView, default: float) -> float:
    speed = obs.speed(pool)
    t = obs.now
    if w.state == WorkerState.BOOTING:
        t += max(0.0, pool.config.boot_time - (obs.now - w.started_at))
    if w.busy:
        rem = w.remaining_work_seconds
        t += (rem if rem is not None else default / 2) / speed
    return t


@dataclass(frozen=True)
class _Job:
    """One waiting job in the plan: its work (media seconds), its upload, that upload's deadline."""

    work: float
    upload: int
    deadline: float


def _jobs(obs: Observation, cfg: DeadlinePolicyConfig, jobs: int, job: float) -> list[_Job]:
    """The waiting jobs in queue order, as the queue source describes them (`waiting_jobs`: work,
    upload, age), else `jobs` alike of `job` seconds from the oldest upload's age, grouped into
    uploads of equal size (`waiting_uploads`; a chunked upload's parts are one upload)."""
    q = obs.queue
    base = obs.now + cfg.target_ready
    out: list[_Job] = []
    uploads: dict[str, int] = {}
    for w in q.waiting_jobs[:MAX_PLAN_JOBS]:
        u = uploads.setdefault(w.upload, len(uploads))
        out.append(_Job(w.work_seconds or cfg.default_job_seconds, u, base - w.age))
    if len(out) >= min(jobs, MAX_PLAN_JOBS):
        return out
    deadline = base - (q.oldest_age or 0.0)
    group = max(1, round(jobs / q.waiting_uploads)) if q.waiting_uploads and not out else 1
    start = len(uploads)
    for k in range(min(jobs, MAX_PLAN_JOBS) - len(out)):
        out.append(_Job(job, start + k // group, deadline))
    return out


def _plan(slots: list[_Slot], jobs: list[_Job]) -> tuple[int, float, float]:
    """(late uploads, seconds late in all, least slack of any upload) when each job goes to the
    first free worker."""
    late, lateness, slack, _ = _run_plan(slots, jobs, 0.0)
    return late, lateness, slack


def _run_plan(slots: list[_Slot], jobs: list[_Job], now: float) -> tuple[int, float, float, float]:
    """`_plan` plus the dollars the plan spends: each job's time at its worker's price, and the
    boot of every new worker it uses.

    An upload is ready when its last job is (a chunked upload's parts), so it is late once, by
    its last job's lateness past its own deadline."""
    if not jobs:
        return 0, 0.0, math.inf, 0.0
    if not slots:
        return len({j.upload for j in jobs}), math.inf, -math.inf, 0.0
    heap = [(s.free_at, i) for i, s in enumerate(slots)]
    heapq.heapify(heap)
    spend = 0.0
    used: set[int] = set()
    done: dict[int, float] = {}
    due: dict[int, float] = {}
    for j in jobs:
        t, i = heap[0]
        s = slots[i]
        end = t + j.work / s.speed
        heapq.heapreplace(heap, (end, i))
        spend += s.price * (j.work / s.speed) / 3600.0
        if s.new and i not in used:
            used.add(i)
            spend += s.price * max(s.free_at - now, 0.0) / 3600.0
        done[j.upload] = max(done.get(j.upload, -math.inf), end)
        due[j.upload] = min(due.get(j.upload, math.inf), j.deadline)
    late, lateness, slack = 0, 0.0, math.inf
    for u, end in done.items():
        over = end - due[u]
        slack = min(slack, -over)
        if over > 1e-6:
            late += 1
            lateness += over
    return late, lateness, slack, spend


def warm_worth_it(pool: PoolView, arrival_rate: float) -> bool:
    """Keeping an idle worker until the next job costs less than a cold start for it.

    Both sides are priced at the pool's rate, so a paid pool compares the expected wait with the
    billed boot time; a free pool is priced in time the same way.
    """
    if arrival_rate <= 0:
        return False
    return 1.0 / arrival_rate <= max(pool.config.boot_time, MIN_BILLED if not pool.free else 0.0)


def _choose(
    obs: Observation, cfg: DeadlinePolicyConfig, jobs: int, job: float
) -> tuple[list[_Slot], Cause, float | None]:
    """(optional workers the plan buys, why, until when that choice holds).

    The choice "buy nothing" while free workers keep the target holds for as long as they keep
    it: every time in the plan is a busy-until estimate (progress falls behind the clock by at
    most one second per second) plus fixed job times, so it drifts later by at most one second
    per second and the slack before the deadline is a safe promise. Other choices promise nothing."""
    default = cfg.default_job_seconds
    plan = _jobs(obs, cfg, jobs, job)
    per_second = cfg.wait_value_per_hour / 3600.0  # dollars one second of lateness is worth
    required: list[_Slot] = []
    optional: list[_Slot] = []
    for rank, pool in enumerate(obs.pools):
        price = pool.config.price_per_hour
        # a worker asked to drain still works: keeping it beats a launch (the controller undrains it)
        usable = [w for w in pool.workers if w.live or (w.drain and w.state in _STILL_WORKING)]
        for w in usable:
            s = _Slot(pool.name, rank, price, _busy_until(obs, pool, w, default), obs.speed(pool))
            # free capacity is always used; a paid worker's next job is a choice
            (required if pool.free else optional).append(s)
        if not pool.static and growable(pool, obs.now):
            room = max(0, pool_cap(pool) - len(usable))
            per = _Slot(pool.name, rank, price, obs.now + pool.config.boot_time, obs.speed(pool), new=True)
            optional.extend([per] * min(room, jobs))  # launches are a choice, free ones at $0
    optional.sort(key=lambda s: (s.price, s.new, s.free_at, s.rank))
    late, _, slack = _plan(required, plan)
    if late == 0:
        # with one speed, the k-th job's start is the k-th earliest slot: it drifts like the slots
        same_speed = len({s.speed for s in required}) <= 1
        stable = obs.now + max(0.0, slack) if jobs <= MAX_PLAN_JOBS and same_speed else None
        return [], Cause.FREE_CAPACITY, stable
    def score(extra: list[_Slot]) -> tuple[float, float]:
        """(dollars spent + waiting past the target at its stated value, lateness)."""
        _, lateness, _, spend = _run_plan(required + extra, plan, obs.now)
        return (math.inf if math.isinf(lateness) else spend + lateness * per_second), lateness

    # cheapest first: the best prefix of the cheapest-first list (one worker more may change
    # nothing until the next arrives too: with first-free dispatch, a chunked upload is ready only
    # when a worker for each part is there), then each further worker that pays its way
    chosen: list[_Slot] = []
    best = score(chosen)
    for k in range(1, len(optional) + 1):
        trial = score(optional[:k])
        if trial < best:
            chosen, best = list(optional[:k]), trial
    for s in optional[len(chosen):]:
        trial = score([*chosen, s])
        if trial < best:
            chosen.append(s)
            best = trial
    for s in sorted(chosen, key=lambda s: (-s.price, not s.new)):  # drop what does not pay its way
        rest = list(chosen)
        rest.remove(s)
        without = score(rest)
        if without <= best:
            chosen, best = rest, without
    kept = _plan(required + chosen, plan)[0] == 0
    return chosen, Cause.BACKLOG if kept else Cause.OUT_OF_REACH, None


def decide_deadline(cfg: DeadlinePolicyConfig, obs: Observation) -> Decision:
    q = obs.queue
    default = cfg.default_job_seconds
    jobs = q.visible + q.delayed
    work = q.waiting_work_seconds + q.waiting_unknown * default
    running = q.running_work_seconds + q.running_unknown * default / 2
    head = (f"deadline: {jobs} job(s), {work:.0f}s waiting, {running:.0f}s running, "
            f"ready within {cfg.target_ready:g}s, waiting worth ${cfg.wait_value_per_hour:g}/h")
    picked: dict[str, int] = {}
    launches: dict[str, int] = {}
    how = Cause.SCALE_IN  # nothing waiting
    stable: float | None = math.inf  # nothing waiting: only an event changes the answer
    if jobs > 0:
        job = max(work / jobs, 1.0)
        chosen, how, stable = _choose(obs, cfg, jobs, job)
        for s in chosen:
            picked[s.pool] = picked.get(s.pool, 0) + 1
            if s.new:
                launches[s.pool] = launches.get(s.pool, 0) + 1
    out: list[PoolDecision] = []
    warm_left = 1 if cfg.keep_warm == "auto" else 0
    idle_free = any(p.idle for p in obs.pools if p.free)
    for pool in sorted(obs.pools, key=lambda p: p.config.price_per_hour):
        if pool.static:
            out.append(PoolDecision(pool.name, len(pool.live), f"{len(pool.live)} reporting", Cause.STATIC))
            continue
        live = pool.live
        cause = how
        if pool.free:
            keep = len(live)  # a free worker costs nothing while it is needed
            keep = keep if jobs > 0 else sum(1 for w in live if w.busy)
            desired = keep + launches.get(pool.name, 0)
        elif jobs > 0:
            desired = picked.get(pool.name, 0)
            if launches.get(pool.name, 0):  # a launch beside busy workers adds to them
                desired = max(desired, sum(1 for w in live if w.busy) + launches[pool.name])
        else:
            desired = sum(1 for w in live if w.busy)
        add = launches.get(pool.name, 0)
        warm = ""
        spare = len(live) - desired
        if spare > 0:
            stable = None  # the arrival rate moves with the clock, and so may the warm worker
        if spare > 0 and warm_left and not idle_free and warm_worth_it(pool, q.arrival_rate):
            desired += 1
            warm_left -= 1
            warm = f"; 1 kept warm (next job expected in {1 / q.arrival_rate:.0f}s)"
            cause = Cause.KEEP_WARM
        desired = clamp(pool, desired)
        if pool.free and desired > 0 and any(not w.busy for w in live):
            idle_free = True
        why = f"{head}; {pool.name}: keep {desired - add}, launch {add}{warm}"
        out.append(PoolDecision(pool.name, desired, why, cause))
    rank = {p.name: i for i, p in enumerate(obs.pools)}
    out.sort(key=lambda d: rank[d.pool])
    return Decision(tuple(out), dict(obs.memory), stable)
