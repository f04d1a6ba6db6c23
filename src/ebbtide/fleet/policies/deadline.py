"""ebbtide's own policy: buy only the capacity the free pools cannot supply in time.

It answers the question seeds 000 and 001 answer by hand ("the Jetson handles 80-85 %, AWS is
burst capacity"): estimate the media seconds waiting and running, let free pools (price 0: the
static edge box, local workers) absorb what they finish within `target_ready`, and launch paid
workers — cheapest pool first, skipping a pool whose launches just failed (spot shortage → the
on-demand pool) — only for the rest. An idle paid worker is kept warm only while the expected
wait for the next job costs less than a cold start (boot time, billed at least a minute), which
replaces seed 000's fixed 25-minute scale-in cooldown.
"""

from __future__ import annotations

from ebbtide.catalog.states import WorkerState
from ebbtide.config.sections import DeadlinePolicyConfig
from ebbtide.fleet.model import Decision, Observation, PoolDecision, PoolView, WorkerView
from ebbtide.fleet.policies.common import ceil_div, clamp, growable, pool_cap

MIN_BILLED = 60.0  # seconds a cloud launch is billed at least (EC2 per-second billing)


def _capacity(obs: Observation, pool: PoolView, w: WorkerView, horizon: float, default: float) -> float:
    """Media seconds this worker can take on from the queue within the horizon."""
    speed = obs.speed(pool)
    busy_for = 0.0
    if w.state == WorkerState.BOOTING:
        busy_for = max(0.0, pool.config.boot_time - (obs.now - w.started_at))
    if w.busy:
        rem = w.remaining_work_seconds
        busy_for += (rem if rem is not None else default / 2) / speed
    return speed * max(0.0, horizon - busy_for)


def _order(obs: Observation) -> list[PoolView]:
    return sorted(obs.pools, key=lambda p: (p.config.price_per_hour, obs.pools.index(p)))


def warm_worth_it(pool: PoolView, arrival_rate: float) -> bool:
    """Keeping an idle worker until the next job costs less than a cold start for it.

    Both sides are priced at the pool's rate, so a paid pool compares the expected wait with the
    billed boot time; a free pool is priced in time the same way.
    """
    if arrival_rate <= 0:
        return False
    return 1.0 / arrival_rate <= max(pool.config.boot_time, MIN_BILLED if not pool.free else 0.0)


def decide_deadline(cfg: DeadlinePolicyConfig, obs: Observation) -> Decision:
    q = obs.queue
    horizon = cfg.target_ready
    default = cfg.default_job_seconds
    work = q.waiting_work_seconds + q.waiting_unknown * default
    jobs = q.visible + q.delayed
    total_work, running = work, q.running_work_seconds + q.running_unknown * default / 2
    head = f"deadline: {total_work:.0f}s waiting, {running:.0f}s running, ready within {horizon:g}s"
    out: list[PoolDecision] = []
    covered_free = 0.0
    warm_left = 1 if cfg.keep_warm == "auto" else 0
    idle_free = False
    for pool in _order(obs):
        live = sorted(pool.live, key=lambda w: (not w.busy, w.started_at))
        keep = 0
        for w in live:
            useful = w.busy or pool.static or (work > 0 and jobs > 0)
            if not useful:
                continue
            cap = _capacity(obs, pool, w, horizon, default)
            keep += 1
            work -= cap
            if pool.free:
                covered_free += cap
            if not w.busy:
                jobs -= 1
        if pool.static:
            idle_free = idle_free or pool.idle > 0
            out.append(PoolDecision(pool.name, len(pool.live), f"static pool, {len(pool.live)} reporting"))
            continue
        # launches asked for but not yet registered count as booting workers
        per_new = obs.speed(pool) * max(horizon - pool.config.boot_time, horizon * 0.1)
        for _ in range(pool.pending):
            if work > 0 and jobs > 0:
                keep += 1
                work -= per_new
                jobs -= 1
        add, note = 0, ""
        if work > 0 and jobs > 0:
            room = max(0, pool_cap(pool) - len(pool.live) - pool.pending)
            need = min(ceil_div(work, per_new), jobs)
            if not growable(pool, obs.now):
                note = f"; launches failed recently, {need} left for the next pool"
            else:
                add = min(need, room)
                work -= add * per_new
                jobs -= add
                if add < need:
                    note = f"; {need - add} more wanted, pool at its cap {pool_cap(pool)}"
        desired = keep + add
        spare = len(live) + pool.pending - desired
        warm = ""
        if spare > 0 and warm_left and not idle_free and warm_worth_it(pool, q.arrival_rate):
            desired += 1
            warm_left -= 1
            warm = f"; 1 kept warm (next job expected in {1 / q.arrival_rate:.0f}s)"
        desired = clamp(pool, desired)
        if pool.free and desired > 0:
            idle_free = idle_free or any(not w.busy for w in pool.live)
        why = f"{head}; {pool.name}: keep {keep}, launch {add}{note}{warm}"
        if pool.free and covered_free:
            why += f"; free pools cover {covered_free:.0f}s"
        out.append(PoolDecision(pool.name, desired, why))
    rank = {p.name: i for i, p in enumerate(obs.pools)}
    out.sort(key=lambda d: rank[d.pool])
    return Decision(tuple(out), dict(obs.memory))
