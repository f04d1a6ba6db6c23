"""The bounds every ffmpeg child runs under (issue 10): a memory cap and a wall-time budget.

`run_ffmpeg` with `memory=` puts the child in a capped cgroup v2 where ours is writable, else under
RLIMIT_AS; with `timeout=` it kills the child at the deadline. Both end as `OverBudget`, a permanent
error (dead at once, no retry). The real ffmpeg is asked for far more than the cap here: a filter
chain on 4000x4000 RGBA frames needs about 1.1 GB (measured, uncapped) before its first output frame.
"""

from __future__ import annotations

import time

import psutil
import pytest

from ebbtide.media.errors import OverBudget
from ebbtide.media.ffmpeg import run_ffmpeg
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
