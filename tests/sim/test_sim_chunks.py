"""The simulator's chunk model: long uploads split with the worker's planning code, short ones not."""

from __future__ import annotations

from ebbtide.config.sections import DeadlinePolicyConfig
from ebbtide.media.chunks import PoolCapacity
from ebbtide.sim.chunked import ChunkModel, split
from ebbtide.sim.runner import simulate
from ebbtide.sim.scenarios import get_scenario
from ebbtide.sim.setups import get_setup
from ebbtide.sim.workloads import JobSpec

FLEET = [PoolCapacity(1, 0, 0.0, 3.4), PoolCapacity(0, 3, 120.0, 4.8)]


def test_a_40_s_clip_is_not_split_and_a_match_is() -> None:
    assert split(JobSpec("a", 0.0, 40.0, 10_000_000), FLEET, ChunkModel()) == []
    parts = split(JobSpec("m", 0.0, 7200.0, 4_000_000_000), FLEET, ChunkModel())
    chunks = [p for p in parts if p.kind == "transcode-chunk"]
    assert len(chunks) == 5 and [p.kind for p in parts].count("transcode-audio") == 1
    assert abs(sum(p.media_seconds for p in chunks) - 7200.0) < 1e-6
    assert all(p.parent == "m" and p.overhead > 0 for p in parts)
    # ranged reads: each chunk downloads about its share, not the whole 4 GB
    assert all(p.size_bytes < 0.25 * 4_000_000_000 for p in chunks)


def test_one_match_is_ready_within_ten_minutes_when_the_config_asks() -> None:
    sc = get_scenario("single-long")
    base = get_setup("ebbtide")
    fast = base.__class__(**{**base.__dict__, "policy": DeadlinePolicyConfig(target_ready=600.0)})
    whole = simulate(sc.jobs(0), sc.fleet, fast, scenario=sc.name)
    chunked = simulate(sc.jobs(0), sc.fleet, fast, scenario=sc.name, chunks=ChunkModel())
    assert whole.p95_ready is not None and chunked.p95_ready is not None and chunked.p95_playable is not None
    assert chunked.p95_ready <= 600.0 < whole.p95_ready
    assert chunked.p95_playable < chunked.p95_ready and chunked.jobs == whole.jobs == 1
