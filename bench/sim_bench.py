"""How fast the simulator runs: a 30-day trace at 100 uploads a day, and a 1-day run as baseline.

Uploads are a platform mix (85% short videos of 1-10 min, 15% matches of mixed sizes) on seed
000's fleet under the `ebbtide` setup (the real controller ticking every 5 s of virtual time).
Run: ./.venv/bin/python bench/sim_bench.py
"""

from __future__ import annotations

import random
import time

from ebbtide.sim import workloads as wl
from ebbtide.sim.fleets import SEED_000
from ebbtide.sim.runner import simulate
from ebbtide.sim.setups import EBBTIDE


def platform_mix(rng: random.Random) -> tuple[float, int]:
    if rng.random() < 0.15:
        return wl.mixed_matches(rng)
    secs = rng.uniform(1, 10) * 60
    return secs, int(secs * 0.5e6)


def bench(days: int, seed: int = 0) -> tuple[float, int, int, int]:
    jobs = wl.poisson(100 / 24, days * wl.DAY, platform_mix, random.Random(seed))
    t0 = time.perf_counter()
    r = simulate(jobs, SEED_000, EBBTIDE, seed=seed, scenario=f"{days}d")
    return time.perf_counter() - t0, len(jobs), r.events, r.ticks


if __name__ == "__main__":
    one, n1, e1, t1 = bench(1)
    month, n30, e30, t30 = bench(30)
    print(f"1 day:   {n1:5d} uploads, {e1:7d} events, {t1:6d} ticks in {one:.2f} s")
    print(
        f"30 days: {n30:5d} uploads, {e30:7d} events, {t30:6d} ticks in {month:.2f} s "
        f"({e30 / month:,.0f} events/s; {month / max(one, 1e-9):.1f}x the 1-day run)"
    )
    print("PASS" if month <= 5.0 else "FAIL", "(target: 30 days in ≤ 5 s)")
