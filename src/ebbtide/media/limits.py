"""Media limits (`media.limits`): pure checks of what a probe found, each failing with one sentence.

Run at probe time in the web (before anything is queued: 422) and again in the worker (dead on the
first attempt). The sentences name the limit and the config key, never a path.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable

from ebbtide.config.sections import MediaLimits
from ebbtide.media.errors import MediaError
from ebbtide.media.pace import TimeBudget

HINT = "ask the administrator to raise media.limits.{key}, or upload a smaller or shorter video"


class LimitExceeded(MediaError):
    """The file asks for more than `media.limits` allows; it will not pass on another try."""


def _fail(text: str, key: str) -> LimitExceeded:
    return LimitExceeded(text, hint=HINT.format(key=key))


def _dur(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def check_size(size: int, limits: MediaLimits) -> None:
    if size > limits.max_input_size:
        raise _fail(f"the file is {size} bytes, above the limit of {limits.max_input_size}", "max_input_size")


def check_streams(count: int, limits: MediaLimits) -> None:
    if count > limits.max_streams:
        raise _fail(
            f"the file has {count} streams, more than the {limits.max_streams} allowed", "max_streams"
        )


def check_frame(width: int, height: int, limits: MediaLimits) -> None:
    if width * height > limits.max_pixels:
        raise _fail(
            f"its frames are {width}x{height} ({width * height} pixels), above the limit of "
            f"{limits.max_pixels} pixels",
            "max_pixels",
        )


def check_fps(fps: float, limits: MediaLimits) -> None:
    if fps > limits.max_fps:
        raise _fail(f"its frame rate is {fps:g} fps, above the limit of {limits.max_fps:g}", "max_fps")


def check_duration(seconds: float, limits: MediaLimits) -> None:
    if seconds > limits.max_duration:
        raise _fail(
            f"it lasts {_dur(seconds)} (as declared or measured), longer than the limit of "
            f"{_dur(limits.max_duration)}",
            "max_duration",
        )


def check_gap(gap: float, limits: MediaLimits) -> None:
    if gap > limits.max_timestamp_gap:
        raise _fail(
            f"its frame timestamps jump by {_dur(gap)}, "
            f"more than the {_dur(limits.max_timestamp_gap)} allowed",
            "max_timestamp_gap",
        )


def budget_speed(configured: float, measured: Iterable[float]) -> float:
    """The speed a time budget assumes: the pool's configured speed, or the median of its recently
    measured speeds when that is slower. A contended host gets a longer budget, never a shorter one."""
    seen = [v for v in measured if v > 0]
    return min(configured, statistics.median(seen)) if seen else configured


def time_factor(attempt: int, limits: MediaLimits) -> float:
    """`time_factor` on the first attempt, doubling on each later one, up to `max_time_factor`."""
    grown = limits.time_factor * 2.0 ** min(max(attempt, 1) - 1, 32)
    return max(limits.time_factor, min(grown, limits.max_time_factor))


def time_budget(duration: float, speed: float, limits: MediaLimits, attempt: int = 1) -> float:
    """Wall seconds one ffmpeg run may take: duration at the pool's measured speed x the attempt's
    factor (`time_factor`), at least `time_floor`."""
    return max(limits.time_floor, duration / max(speed, 1e-3) * time_factor(attempt, limits))


def attempt_budget(duration: float, speed: float, limits: MediaLimits, attempt: int = 1) -> TimeBudget:
    """This attempt's budget and the largest any attempt gets (see `media/pace.py`)."""
    return TimeBudget(
        seconds=time_budget(duration, speed, limits, attempt),
        largest=time_budget(duration, speed, limits, 64),
        duration=duration,
        stall=limits.stall_timeout,
    )
