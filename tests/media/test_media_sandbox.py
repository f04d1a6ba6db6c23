"""The bounds every ffmpeg child runs under (issue 10): a memory cap and a wall-time budget.

`run_ffmpeg` with `memory=` puts the child in a capped cgroup v2 where ours is writable, else under
RLIMIT_AS; with `timeout=` it kills the child at the deadline. Both end as `OverBudget`, a permanent
error (dead at once, no retry) — except a run given a `budget=` that is still progressing when it
runs out (pace.py): `TooSlow`, retried with a larger budget until the largest factor. The real
ffmpeg is asked for far more than the cap here: a filter chain on 4000x4000 RGBA frames needs
about 1.1 GB (measured, uncapped) before its first output frame.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest

from ebbtide.config.sections import MediaLimits
from ebbtide.media.errors import OverBudget, TooSlow
from ebbtide.media.ffmpeg import run_ffmpeg
from ebbtide.media.limits import attempt_budget
from ebbtide.media.pace import TimeBudget
from ebbtide.rss import peak_tree_rss
from ebbtide.worker.verdict import Verdict, verdict

ENDLESS = ["-nostats", "-f", "lavfi", "-i", "color=black:size=64x64:rate=25", "-f", "null", "-"]
SMALL = [
    "-nostats", "-f", "lavfi", "-i", "color=black:size=640x360:rate=25:duration=2",
    "-c:v", "libx264", "-preset", "ultrafast", "-f", "null", "-",
]  # fmt: skip
# 4000x4000 RGBA frames split in four and stacked into one 8000x8000 frame: ~1.1 GB at once
HUNGRY = [
    "-nostats", "-f", "lavfi", "-i", "color=gray:size=4000x4000:rate=1:duration=2",
    "-vf", "format=rgba,split=4[a][b][c][d];[a][b]hstack[x];[c][d]hstack[y];[x][y]vstack",
    "-f", "null", "-",
]  # fmt: skip


def _ffmpeg_children() -> list[psutil.Process]:
    return [c for c in psutil.Process().children(recursive=True) if "ffmpeg" in c.name()]


def test_ffmpeg_past_its_time_budget_is_stopped_and_permanent() -> None:
    started = time.monotonic()
    with pytest.raises(OverBudget, match="time budget of 2 s") as e:
        run_ffmpeg(ENDLESS, timeout=2.0, what="transcode")
    # killed at the deadline, not run on (generous: the machine is shared)
    assert time.monotonic() - started < 30
    assert not _ffmpeg_children()
    assert verdict(e.value, 1, 5) is Verdict.DEAD
    assert "/" not in str(e.value)


def test_ffmpeg_over_its_memory_cap_is_stopped_and_permanent() -> None:
    cap = 512 * 2**20
    run_ffmpeg(SMALL, timeout=240, memory=cap, what="transcode")  # a normal encode fits the cap
    with peak_tree_rss(0.02, include_root=False) as peak, pytest.raises(OverBudget) as e:
        run_ffmpeg(HUNGRY, timeout=240, memory=cap, what="transcode")
    # named as over the cap (not "the input may be damaged"), whether a cgroup or RLIMIT_AS stopped it
    assert "needed more than its memory cap of 512 MB" in str(e.value), e.value
    assert peak[0] < cap, peak
    assert not _ffmpeg_children()
    assert verdict(e.value, 1, 5) is Verdict.DEAD


# ffmpeg reading its input at its own pace (-re): output time grows at 1x, like a slow host
PROGRESS = ["-progress", "pipe:1", "-nostats", "-stats_period", "0.5"]


def _paced(seconds: float) -> list[str]:
    return ["-re", "-f", "lavfi", "-i", f"color=black:size=64x64:rate=25:duration={seconds}",
            *PROGRESS, "-f", "null", "-"]  # fmt: skip


def test_a_progressing_but_slow_encode_is_retried_with_a_larger_budget() -> None:
    """Attempt 1's budget (8 s) is shorter than the 12 s a 1x encode of 12 s needs: still
    progressing, so TooSlow (transient, retried); attempt 2 doubles the factor (16 s) and finishes."""
    limits = MediaLimits(time_factor=1, max_time_factor=4, time_floor=1, stall_timeout=30)
    first = attempt_budget(12, 1.5, limits, attempt=1)
    assert (first.seconds, first.largest) == (8, 32)
    with pytest.raises(TooSlow, match="while still progressing") as e:
        run_ffmpeg(_paced(12), budget=first, what="transcode")
    assert verdict(e.value, 1, 5) is Verdict.RETRY
    assert not _ffmpeg_children()
    second = attempt_budget(12, 1.5, limits, attempt=2)
    assert second.seconds == 16
    run_ffmpeg(_paced(12), budget=second, what="transcode")  # the retry fits its larger budget


def test_an_encode_still_progressing_past_the_largest_budget_is_permanent() -> None:
    at_largest = TimeBudget(seconds=5, largest=5, duration=1000, stall=30)
    with pytest.raises(OverBudget) as e:
        run_ffmpeg(_paced(1000), budget=at_largest, what="transcode")
    assert verdict(e.value, 1, 5) is Verdict.DEAD
    assert not _ffmpeg_children()


def test_a_stuck_input_is_dead_at_once(tmp_path: Path) -> None:
    """A stalled input: a FIFO given 1 s of MPEG-TS and then nothing, its writer still open. ffmpeg
    waits on it forever; at its budget no output time moves, so OverBudget on attempt 1."""
    clip = tmp_path / "start.ts"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=1", "-c:v", "mpeg2video",
                "-f", "mpegts", str(clip)], timeout=120)  # fmt: skip
    fifo = tmp_path / "stalled.ts"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR)  # a writer that never closes (O_RDWR does not block on a FIFO)
    try:
        os.write(fd, clip.read_bytes()[:60_000])
        budget = TimeBudget(seconds=8, largest=10_000, duration=60, stall=3)
        started = time.monotonic()
        with pytest.raises(OverBudget, match="output stopped advancing") as e:
            run_ffmpeg(["-f", "mpegts", "-i", str(fifo), *PROGRESS, "-f", "null", "-"],
                       budget=budget, what="transcode")  # fmt: skip
    finally:
        os.close(fd)
    assert time.monotonic() - started < 60
    assert verdict(e.value, 1, 5) is Verdict.DEAD
    assert "/" not in e.value.message
    assert not _ffmpeg_children()
