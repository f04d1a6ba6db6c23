"""What an ffmpeg run past its time budget means (issue 10): a pure verdict on its progress.

A run whose output time (`-progress` out_time) stopped moving is stuck on its input: the file's
doing, permanent. A run still progressing was on a host slower than the budget assumed: another
attempt gets a larger budget (`media.limits.time_factor` doubling per attempt up to
`max_time_factor`), unless at its own rate even that largest budget would run out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Pace(enum.Enum):
    STALLED = "stalled"  # no output time reported, or none added for `stall` seconds: permanent
    HOPELESS = "hopeless"  # progressing, but even the largest budget is too short at this rate
    SLOW = "slow"  # progressing; a larger budget on another attempt can finish: transient


@dataclass(frozen=True)
class TimeBudget:
    """One ffmpeg run's wall-time budget and what judging an overrun needs."""

    seconds: float  # this attempt's budget
    largest: float  # the budget at the largest factor (the last attempt's)
    duration: float  # media seconds the run writes
    stall: float  # output time unchanged this long = stuck


@dataclass(frozen=True)
class Overrun:
    """Where a run stood when its budget ran out."""

    elapsed: float  # wall seconds run
    out_time: float | None  # media seconds written (ffmpeg's out_time); None if never reported
    since_advance: float  # wall seconds since out_time last grew


def judge(o: Overrun, b: TimeBudget) -> Pace:
    """STALLED, HOPELESS or SLOW for a run stopped at its budget."""
    if o.out_time is None or o.out_time <= 0 or o.since_advance >= b.stall:
        return Pace.STALLED
    projected = o.elapsed * b.duration / o.out_time  # wall seconds to finish at the rate so far
    if o.elapsed >= b.largest or projected > b.largest:
        return Pace.HOPELESS
    return Pace.SLOW
