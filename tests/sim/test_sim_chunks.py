"""The simulator's chunk model: long uploads split with the worker's planning code, short ones not."""

from __future__ import annotations

from ebbtide.config.sections import DeadlinePolicyConfig
from ebbtide.media.chunks import PoolCapacity, SplitGoal
from ebbtide.sim.chunked import ChunkModel, split, split_read_bytes
from ebbtide.sim.runner import simulate
from ebbtide.sim.scenarios import get_scenario
from ebbtide.sim.setups import get_setup
from ebbtide.sim.workloads import JobSpec

FLEET = [PoolCapacity(1, 0, 0.0, 3.4), PoolCapacity(0, 3, 120.0, 4.8)]  # free: an idle edge box and 3 local
FAST = SplitGoal(due=600.0, wait_value_per_hour=10.0, splitter_speed=3.4)


def test_a_40_s_clip_is_not_split_and_a_match_is() -> None:
    assert split(JobSpec("a", 0.0, 40.0, 10_000_000), FLEET, ChunkModel(), FAST) == []
    parts = split(JobSpec("m", 0.0, 7200.0, 4_000_000_000), FLEET, ChunkModel(), FAST)
    chunks = [p for p in parts if p.kind == "transcode-chunk"]
    assert len(chunks) >= 5 and [p.kind for p in parts].count("transcode-audio") == 1
    assert abs(sum(p.media_seconds for p in chunks) - 7200.0) < 1e-6
    assert chunks[0].media_seconds < chunks[1].media_seconds  # a short first chunk plays sooner
    assert all(p.parent == "m" and p.overhead > 0 for p in parts)
    # ranged reads: each chunk downloads about its share, not the whole 4 GB
    assert all(p.size_bytes < 0.25 * 4_000_000_000 for p in chunks)


def test_the_split_probes_by_ranges_as_production_does() -> None:
    """Production probes a presigned URL by ranges in the capped child (worker/handlers/transcode.py):
    the split reads only the container's index; the old whole download is a what-if."""
    match = JobSpec("m", 0.0, 7200.0, 4_000_000_000)
    assert split_read_bytes(match, ChunkModel()) < 0.01 * match.size_bytes
    assert split_read_bytes(match, ChunkModel(ranged_probe=False)) == match.size_bytes


def test_one_match_at_a_speed_setting_plays_within_3_minutes_and_is_ready_far_sooner() -> None:
    """Asking for speed: a 10-min target and $10 per hour of waiting beyond it. The split plans
    with the policy's trade-off, so GPUs are launched and the short first chunk plays within 3 min;
    ready in about 11.6 min (the target is missed by the planner's speeds: the configured ones
    leave out transfers), against 32.7 unchunked. At the default trade-off the edge box does the
    match whole (planned on time with its configured speed), at no cost."""
    sc = get_scenario("single-long")
    base = get_setup("ebbtide")
    policy = DeadlinePolicyConfig(target_ready=600.0, wait_value_per_hour=10.0)
    fast = base.__class__(**{**base.__dict__, "policy": policy})
    whole = simulate(sc.jobs(0), sc.fleet, fast, scenario=sc.name)
    ranged = simulate(sc.jobs(0), sc.fleet, fast, scenario=sc.name, chunks=ChunkModel())
    download = simulate(sc.jobs(0), sc.fleet, fast, scenario=sc.name, chunks=ChunkModel(ranged_probe=False))
    assert whole.p95_ready is not None and ranged.p95_ready is not None and ranged.p95_playable is not None
    assert download.p95_ready is not None
    assert ranged.p95_ready <= 12.5 * 60 and whole.p95_ready > 30 * 60
    assert ranged.p95_playable <= 180.0 and ranged.jobs == whole.jobs == 1
    default = simulate(sc.jobs(0), sc.fleet, base, scenario=sc.name, chunks=ChunkModel())
    assert default.total_cost == 0.0


def test_chunked_costs_no_more_than_unchunked_at_the_thrifty_setting() -> None:
    """The planner plans only for workers the policy would buy: at $0.2/h of waiting nothing
    paid is planned that the unchunked policy would not buy."""
    thrifty = get_setup("ebbtide-thrifty")
    for name in ("single-long", "three-matches", "twelve-hourly"):
        sc = get_scenario(name)
        a = simulate(sc.jobs(0), sc.fleet, thrifty, scenario=name)
        b = simulate(sc.jobs(0), sc.fleet, thrifty, scenario=name, chunks=ChunkModel())
        assert b.total_cost <= 1.15 * a.total_cost + 1e-9, name
        assert b.p95_ready is not None and a.p95_ready is not None and b.p95_ready <= a.p95_ready + 1.0, name
