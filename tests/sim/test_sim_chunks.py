"""The simulator's chunk model: long uploads split with the worker's planning code, short ones not."""

from __future__ import annotations

from ebbtide.config.sections import DeadlinePolicyConfig
from ebbtide.media.chunks import PoolCapacity
from ebbtide.sim.chunked import ChunkModel, split, split_read_bytes
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


def test_the_split_reads_the_whole_source_unless_it_probes_through_ranged_reads() -> None:
    """Production downloads a remote source before probing it (worker/handlers/transcode.py); a
    ranged probe reads only the container's index."""
    match = JobSpec("m", 0.0, 7200.0, 4_000_000_000)
    assert split_read_bytes(match, ChunkModel()) == match.size_bytes
    assert split_read_bytes(match, ChunkModel(ranged_probe=True)) < 0.01 * match.size_bytes


def test_one_match_is_ready_within_ten_minutes_when_the_config_asks() -> None:
    """Asking for speed: a 10-min target and $10 per hour of waiting beyond it. The split is a job
    on the edge box (it reads the source first, so it holds that worker): with a ranged probe the
    match is ready within 10 min; with today's whole download, within 12."""
    sc = get_scenario("single-long")
    base = get_setup("ebbtide")
    policy = DeadlinePolicyConfig(target_ready=600.0, wait_value_per_hour=10.0)
    fast = base.__class__(**{**base.__dict__, "policy": policy})
    whole = simulate(sc.jobs(0), sc.fleet, fast, scenario=sc.name)
    ranged = simulate(sc.jobs(0), sc.fleet, fast, scenario=sc.name, chunks=ChunkModel(ranged_probe=True))
    download = simulate(sc.jobs(0), sc.fleet, fast, scenario=sc.name, chunks=ChunkModel())
    assert whole.p95_ready is not None and ranged.p95_ready is not None and ranged.p95_playable is not None
    assert download.p95_ready is not None
    assert ranged.p95_ready <= 600.0 < whole.p95_ready
    assert ranged.p95_ready < download.p95_ready <= 720.0
    assert ranged.p95_playable < ranged.p95_ready and ranged.jobs == whole.jobs == 1
