"""Slow-host bench (issue 10): a healthy encode past its time budget is retried, not killed for good.

Transcodes a generated clip twice with the default limits (the baseline wall time), then again with
`media.limits.time_factor` set so attempt 1's budget is a third of that baseline, and goes on as the
worker would (attempt 2, 3 … with the factor doubling) until it completes or is dead.

    PYTHONPATH=src ./.venv/bin/python bench/slow_host_bench.py [--seconds 20] [--height 360]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ebbtide.config.sections import MediaConfig, MediaLimits
from ebbtide.media.errors import OverBudget, TooSlow
from ebbtide.media.pipeline import transcode
from ebbtide.media.samples import generate_clip
from ebbtide.worker.verdict import Verdict, verdict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="clip length")
    ap.add_argument("--height", type=int, default=360, help="clip height (16:9)")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="slowhost-"))
    clip = generate_clip(work / "clip.mp4", seconds=a.seconds, width=a.height * 16 // 9, height=a.height)
    cfg = MediaConfig()
    walls = []
    for run in range(2):  # the first run also pays one-off costs (encoder probe, cold caches)
        started = time.monotonic()
        transcode(clip, work / f"baseline{run}", cfg)
        walls.append(time.monotonic() - started)
    wall = min(walls)
    print(f"baseline: {wall:.1f} s wall (best of 2) for {a.seconds:g} s of {a.height}p")
    factor = wall / 3 / a.seconds  # at speed 1: attempt 1's budget is a third of the baseline
    limits = MediaLimits(time_factor=factor, max_time_factor=factor * 8, time_floor=0.5)
    slow = cfg.model_copy(update={"limits": limits})
    for attempt in range(1, 6):
        started = time.monotonic()
        try:
            transcode(clip, work / f"attempt{attempt}", slow, attempt=attempt)
        except (TooSlow, OverBudget) as e:
            v = verdict(e, attempt, 5)
            print(f"attempt {attempt}: {type(e).__name__} after {time.monotonic() - started:.1f} s, "
                  f"{v.value}: {e.message}")  # fmt: skip
            if v is Verdict.DEAD:
                return
            continue
        print(f"attempt {attempt}: complete in {time.monotonic() - started:.1f} s")
        return


if __name__ == "__main__":
    main()
