"""A lower bound on what any setup can pay for one trace on one fleet, independent of the setup.

Waiting is free, so with a free pool the cheapest schedule of all is "the edge box does
everything, eventually": $0. A bound worth comparing against therefore names the wait it allows:
`lower_bound(jobs, fleet, within)` is the least any schedule can pay if every upload is ready
within `within` seconds of its arrival. It relaxes everything that only costs more:

- the free pools (static and $0 pools, every worker at `max`, no boot) process any job's work,
  divisibly and in parallel, but only inside its window [arrival, arrival + within], all at the
  speed of the fastest free pool;
- what is left of each job is paid at the cheapest paid pool for that job (its own duration
  there times the price), with no boot, no idle time and no 60 s billing minimum.

The free part is a fractional scheduling problem with time windows and one divisible resource:
its feasible amounts form a polymatroid, so taking jobs in order of dollars saved per free second,
each as far as the windows allow (the tightest interval of window endpoints containing its
window), is optimal. Any real setup that gets every upload ready within `within` pays at least
this (tests/sim/test_bound.py checks it on random traces for every built-in setup).
"""

from __future__ import annotations

from collections.abc import Sequence

from ebbtide.sim.fleets import SimFleet, job_seconds
from ebbtide.sim.workloads import JobSpec

EXACT_LIMIT = 400  # jobs; beyond this the free part is bounded by capacity alone (still a bound)


def lower_bound(jobs: Sequence[JobSpec], fleet: SimFleet, within: float) -> float:
    paid = [p for p in fleet.pools if p.paid]
    free = [p for p in fleet.pools if not p.paid]
    if not jobs or not paid:
        return 0.0
    cost = [min(job_seconds(j, p) * p.config.price_per_hour / 3600.0 for p in paid) for j in jobs]
    total = sum(cost)
    workers = sum(p.config.max for p in free)
    if not free or workers == 0 or within <= 0:
        return total
    need = [min(job_seconds(j, p) for p in free) for j in jobs]  # free seconds to do all of it
    value = [c / n if n > 0 else 0.0 for c, n in zip(cost, need, strict=True)]
    if len(jobs) > EXACT_LIMIT:
        span = max(j.arrival for j in jobs) - min(j.arrival for j in jobs) + within
        return max(0.0, total - max(value) * workers * span)
    points = sorted({t for j in jobs for t in (j.arrival, j.arrival + within)})
    index = {t: i for i, t in enumerate(points)}
    n = len(points)
    # used[s][e]: free seconds given to jobs whose window lies within [points[s], points[e]]
    used = [[0.0] * n for _ in range(n)]
    saved = 0.0
    for k in sorted(range(len(jobs)), key=lambda k: -value[k]):
        a, b = index[jobs[k].arrival], index[jobs[k].arrival + within]
        room = need[k]
        for s in range(a + 1):
            row = used[s]
            for e in range(b, n):
                room = min(room, workers * (points[e] - points[s]) - row[e])
        room = max(0.0, room)
        if room <= 0:
            continue
        saved += room * value[k]
        for s in range(a + 1):
            row = used[s]
            for e in range(b, n):
                row[e] += room
    return max(0.0, total - saved)
