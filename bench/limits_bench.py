"""Limits bench: peak memory of transcoding a normal 1080p clip before and after issue 10's bounds.

  before — the ladder's ffmpeg as it ran before: `-i path` (demuxer guessed), no memory cap, the
           parent's environment;
  after  — the same ladder through `run_ffmpeg` as the pipeline runs it now: the demuxer forced
           from the allowlist, `protocol_whitelist=file`, `-max_pixels`, the memory cap
           (cgroup v2 where writable, else RLIMIT_AS), MALLOC_ARENA_MAX, a time budget.

Peak RSS is sampled every 20 ms over the whole child process tree (/proc), the same way for both,
interleaved (before, after, before, after …) so machine noise hits both alike. The isolated probe
(a capped child that exits before ffmpeg starts) is measured on its own line.

    ./.venv/bin/python bench/limits_bench.py [--seconds 120] [--repeat 2] [--workdir DIR] [--speed 1]

--speed is the pool speed the "after" run's time budget assumes (media s per wall s); on a loaded
machine a 1080p ladder can run slower than the default budget allows, so lower it there.

The default clip is 30 s (not 120 s) to keep the run short on a shared 2-core box; the peak is
reached within the first seconds of a steady-state ladder encode, so the figure does not depend
on the length. Pass --seconds 120 for the full-length figure.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ebbtide.config import MediaConfig
from ebbtide.media.command import STORYBOARD_FRAMES, build_command
from ebbtide.media.containers import container_of
from ebbtide.media.ffmpeg import ffmpeg_path, run_ffmpeg
from ebbtide.media.isolated import probe_isolated
from ebbtide.media.ladder import plan_ladder
from ebbtide.media.limits import time_budget
from ebbtide.media.pipeline import encode_options
from ebbtide.media.samples import generate_clip
from ebbtide.media.sandbox import make_cgroup
from ebbtide.rss import peak_tree_rss


def _strip_forced_input(args: list[str], src: Path) -> list[str]:
    """The command as the code before issue 10 built it: `-i path`, the demuxer left to guess."""
    i = args.index("-i")
    start = args.index("-f")
    return [*args[:start], "-i", str(src), *args[i + 2 :]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--speed", type=float, default=1.0, help="pool speed the time budget assumes")
    a = ap.parse_args()
    work = a.workdir or Path(tempfile.mkdtemp(prefix="ebbtide-limits-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    src = generate_clip(work / "clip1080.mp4", seconds=a.seconds, width=1920, height=1080)
    cfg = MediaConfig(encoder="libx264")
    info = probe_isolated(src, cfg.limits)
    ladder = plan_ladder(info, cfg)
    fmt = container_of(src)
    opts = encode_options(cfg, ladder, "libx264", fmt)
    budget = time_budget(info.duration, a.speed, cfg.limits)
    out = work / "out"

    def fresh() -> list[str]:
        shutil.rmtree(out, ignore_errors=True)
        (out / STORYBOARD_FRAMES).mkdir(parents=True)
        return build_command(src, out, ladder, opts)

    def before() -> None:
        cmd = [ffmpeg_path(), "-hide_banner", "-nostdin", *_strip_forced_input(fresh(), src)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)  # its -progress lines

    def after() -> None:
        run_ffmpeg(fresh(), timeout=budget, memory=cfg.limits.max_memory, what="bench")

    runs: dict[str, list[tuple[int, float]]] = {"before": [], "after": []}
    methods: dict[str, Callable[[], None]] = {"before": before, "after": after}
    for _ in range(a.repeat):
        for name, fn in methods.items():
            t0 = time.monotonic()
            with peak_tree_rss(0.02, include_root=False) as peak:
                fn()
            runs[name].append((peak[0], time.monotonic() - t0))
    with peak_tree_rss(0.02, include_root=False) as probe_peak:
        probe_isolated(src, cfg.limits)
    cap_kind = "cgroup v2" if (cg := make_cgroup(cfg.limits.max_memory)) else "RLIMIT_AS"
    if cg:
        cg.remove()
    mb = 2**20
    print(
        f"clip: {info.width}x{info.height} {info.fps:g} fps, {info.duration:.0f} s; cap: {cap_kind} "
        f"{cfg.limits.max_memory // mb} MB; time budget {budget:.0f} s; repeats {a.repeat}"
    )
    print(f"{'run':<8} {'peak RSS MB (median)':>22} {'range':>16} {'wall s':>8}")
    med = {}
    for name, rs in runs.items():
        peaks = [p for p, _ in rs]
        med[name] = statistics.median(peaks)
        print(
            f"{name:<8} {med[name] / mb:>22.0f} {min(peaks) / mb:>7.0f}-{max(peaks) / mb:<8.0f} "
            f"{statistics.median(w for _, w in rs):>8.1f}"
        )
    print(f"{'probe':<8} {probe_peak[0] / mb:>22.0f}   (isolated child, runs before ffmpeg)")
    growth = med["after"] / med["before"] - 1
    print(f"after/before peak: {med['after'] / med['before']:.3f} ({growth:+.1%}; must be ≤ +10 %)")
    if a.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
