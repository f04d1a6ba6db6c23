"""The simulator's lower bound is a bound (issue 15): one per trace and fleet, whatever the setup,
and no setup ever pays less than it for the waits it delivered.

Property test (hypothesis): random small traces on seed 000's and seed 002's fleets, every
built-in setup; each run pays at least the bound at its own longest upload→ready, over the jobs it
made ready. The bound is also monotone: a longer allowed wait never raises it.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebbtide.sim.bound import lower_bound
from ebbtide.sim.fleets import SEED_000, SEED_002, job_seconds
from ebbtide.sim.runner import simulate
from ebbtide.sim.setups import SETUPS
from ebbtide.sim.workloads import JobSpec

job = st.builds(
    lambda i, arrival, minutes, mb: (arrival, minutes * 60.0, mb * 1_000_000),
    st.integers(0, 0),
    st.floats(0, 4 * 3600),
    st.floats(1, 130),
    st.integers(10, 4000),
)


def _jobs(raw: list[tuple[float, float, int]]) -> list[JobSpec]:
    return [JobSpec(f"j{i:03d}", a, m, b) for i, (a, m, b) in enumerate(sorted(raw))]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(job, min_size=1, max_size=7), st.sampled_from([SEED_000, SEED_002]), st.integers(0, 3))
def test_no_setup_pays_less_than_the_bound_for_the_waits_it_delivered(raw, fleet, seed) -> None:  # type: ignore[no-untyped-def]
    jobs = _jobs(raw)
    for setup in SETUPS.values():
        r = simulate(jobs, fleet, setup, seed=seed)
        if r.max_ready is None:
            continue
        assert r.total_cost >= r.own_bound - 1e-9, (setup.name, r.total_cost, r.own_bound)
        # the reported bound is the same for every setup: it depends on the trace and fleet only
        assert r.lower_bound == lower_bound(jobs, fleet, r.bound_within)
        if r.max_ready <= r.bound_within and r.lost == 0:
            assert r.total_cost >= r.lower_bound - 1e-9, setup.name


@settings(max_examples=40, deadline=None)
@given(st.lists(job, min_size=1, max_size=12), st.floats(60, 6 * 3600), st.floats(1, 4))
def test_bound_falls_as_the_allowed_wait_grows_and_never_exceeds_all_paid(raw, within, factor) -> None:  # type: ignore[no-untyped-def]
    jobs = _jobs(raw)
    cheapest = min((p for p in SEED_000.pools if p.paid), key=lambda p: p.config.price_per_hour)
    all_paid = sum(job_seconds(j, cheapest) * cheapest.config.price_per_hour / 3600 for j in jobs)
    tight, loose = lower_bound(jobs, SEED_000, within), lower_bound(jobs, SEED_000, within * factor)
    assert 0 <= loose <= tight + 1e-12 <= all_paid + 1e-9


def test_bound_on_six_matches_counts_what_the_edge_box_can_do_in_30_minutes() -> None:
    from ebbtide.sim.scenarios import SCENARIOS

    sc = SCENARIOS["six-matches"]
    jobs = sc.jobs(0)
    edge = SEED_000.pool("edge")
    spot = SEED_000.pool("gpu-spot")
    per_job = job_seconds(jobs[0], spot) * spot.config.price_per_hour / 3600
    share = 1800 / job_seconds(jobs[0], edge)  # of one match, the edge box's 30 minutes
    assert abs(lower_bound(jobs, sc.fleet, 1800) - (6 - share) * per_job) < 1e-9
