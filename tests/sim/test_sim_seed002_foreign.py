"""Seed 002 in the simulator: the seed's thresholds with the seed's actuation ("terminate all spots
after 10 idle minutes", busy or not) against the same thresholds and ebbtide's deadline policy acted
by ebbtide on the same foreign pool (busy workers cannot drain; they are retired once idle)."""

from __future__ import annotations

from ebbtide.sim.runner import simulate
from ebbtide.sim.scenarios import SCENARIOS
from ebbtide.sim.setups import SETUPS


def test_seed_002_terminate_all_kills_what_ebbtide_keeps() -> None:
    sc = SCENARIOS["long-sources"]
    jobs = sc.jobs(0)
    runs = {name: simulate(jobs, sc.fleet, SETUPS[name], seed=0, scenario=sc.name)
            for name in ("seed-002-thresholds", "seed-002-ebbtide", "ebbtide-foreign")}
    seed = runs["seed-002-thresholds"]
    # the seed's rule: 0 waiting for 10 min → terminate all, while long jobs are still active
    assert seed.killed > 0 and seed.wasted_minutes > 0
    for name in ("seed-002-ebbtide", "ebbtide-foreign"):
        r = runs[name]
        assert (r.killed, r.retired_busy, r.lost) == (0, 0, 0), name
        assert r.ready == len(jobs)
        assert r.paid_hours > 0  # the spots were used, and returned to zero
    # the same thresholds acted busy-safe are no slower than the seed's
    assert runs["seed-002-ebbtide"].p95_ready <= seed.p95_ready  # type: ignore[operator]
