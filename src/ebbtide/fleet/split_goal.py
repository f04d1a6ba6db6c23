"""What the configured scaling policy would buy for a source being split: one place for the chunk
planner's trade-off, shared by the worker's split and the simulator's.

The deadline policy buys paid workers only while the lateness they save, at `wait_value_per_hour`,
is worth their price, so the planner plans with the same target and value. The other policies
launch on queue depth whatever the lateness, so for them the planner plans for speed.
"""

from __future__ import annotations

import math

from ebbtide.config.sections import DeadlinePolicyConfig, MediaConfig, PolicyConfig
from ebbtide.media.chunks import SplitGoal

PART_OVERHEAD = 15.0  # s per part: process start, probe through a URL, seek, first upload
STITCH = 10.0  # s: manifests in, playlists out, one catalog transaction


def split_goal(
    policy: PolicyConfig | object,
    media: MediaConfig,
    age: float,
    splitter_speed: float,
    splitter_price_per_hour: float,
) -> SplitGoal:
    """The planner's goal for an upload `age` seconds old, split by a worker of this speed and price."""
    if isinstance(policy, DeadlinePolicyConfig):
        due, value = policy.target_ready - max(0.0, age), policy.wait_value_per_hour
    else:
        due, value = 0.0, math.inf
    return SplitGoal(
        due=due, wait_value_per_hour=value, min_chunk_seconds=media.chunk_min_seconds,
        max_chunks=media.max_chunks, overhead_seconds=PART_OVERHEAD, stitch_seconds=STITCH,
        splitter_speed=max(splitter_speed, 1e-6), splitter_price_per_hour=splitter_price_per_hour,
    )  # fmt: skip
