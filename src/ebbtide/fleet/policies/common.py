"""Helpers the policies share: which pools may grow, and spreading a total over them."""

from __future__ import annotations

import math
from collections.abc import Iterable

from ebbtide.fleet.causes import Cause
from ebbtide.fleet.model import Observation, PoolDecision, PoolView

# A pool whose launches failed this recently gets no new launches; the next pool takes its share.
LAUNCH_FAILURE_WINDOW = 300.0


def pool_cap(pool: PoolView) -> int:
    """The most workers this pool may hold: max, and the account quota if lower."""
    cap = pool.config.max
    if pool.config.quota is not None:
        cap = min(cap, pool.config.quota)
    return cap


def growable(pool: PoolView, now: float) -> bool:
    """No launches in a pool whose provider is failing or whose launches failed recently."""
    return pool.provider_error is None and not pool.failed_since(now - LAUNCH_FAILURE_WINDOW)


def scalable(obs: Observation) -> list[PoolView]:
    """Pools the fleet starts and stops, free ones first, then in configured order."""
    ordered = [(not p.free, i, p) for i, p in enumerate(obs.pools) if not p.static]
    return [p for _, _, p in sorted(ordered, key=lambda t: (t[0], t[1]))]


def free_idle(obs: Observation) -> int:
    """Idle workers in free pools: they take visible jobs before any paid launch is worth it."""
    return sum(p.idle for p in obs.pools if p.free)


def static_decisions(obs: Observation) -> list[PoolDecision]:
    return [
        PoolDecision(p.name, len(p.live), f"{len(p.live)} worker(s) reporting", Cause.STATIC)
        for p in obs.pools
        if p.static
    ]


def spread(obs: Observation, total: int, why: str, cause: Cause) -> list[PoolDecision]:
    """Spread `total` workers over the scalable pools.

    Existing workers stay where they are (no churn between pools). Growth goes to the first pool
    with room whose launches have not failed recently; shrinking takes from the last pools first.
    """
    pools = scalable(obs)
    current = {p.name: p.running for p in pools}
    want = dict(current)
    have = sum(current.values())
    notes: dict[str, str] = {}
    if total > have:
        extra = total - have
        for p in pools:
            if extra <= 0:
                break
            if not growable(p, obs.now):
                continue  # the controller notes it (Note.POOL_FAILING)
            add = max(0, min(extra, pool_cap(p) - want[p.name]))
            want[p.name] += add
            extra -= add
        if extra > 0:
            notes.setdefault(pools[-1].name if pools else "", f"{extra} more wanted, every pool at its cap")
    elif total < have:
        cut = have - total
        for p in reversed(pools):
            take = min(cut, want[p.name])
            want[p.name] -= take
            cut -= take
    out = static_decisions(obs)
    for p in pools:
        d = clamp(p, want[p.name])
        note = notes.get(p.name)
        out.append(PoolDecision(p.name, d, f"{why}; {note}" if note else why, cause))
    return _in_pool_order(obs, out)


def clamp(pool: PoolView, desired: int) -> int:
    return max(pool.config.min, min(desired, pool_cap(pool)))


def ceil_div(a: float, b: float) -> int:
    return 0 if a <= 0 else math.ceil(a / b - 1e-9)


def _in_pool_order(obs: Observation, decisions: Iterable[PoolDecision]) -> list[PoolDecision]:
    rank = {p.name: i for i, p in enumerate(obs.pools)}
    return sorted(decisions, key=lambda d: rank[d.pool])
