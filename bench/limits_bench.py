"""Limits bench: peak memory of transcoding a normal 1080p clip before and after issue 10's bounds.

  before — the ladder's ffmpeg as it ran before: `-i path` (demuxer guessed), no memory cap, the
           parent's environment;
  after  — the same ladder through `run_ffmpeg` as the pipeline runs it now: the demuxer forced
           from the allowlist, `protocol_whitelist=file`, `-max_pixels`, the memory cap
           (cgroup v2 where writable, else RLIMIT_AS), MALLOC_ARENA_MAX, a time budget.

Peak RSS is sampled every 20 ms over the whole child process tree (/proc), the same way for both,
interleaved (before, after, before, after …) so machine noise hits both alike. The isolated probe
(a capped child that exits before ffmpeg starts) is measured on its own line.

    ./.venv/bin/python bench/limits_bench.py [--seconds 120] [--repeat 2] [--workdir DIR]

The default clip is 30 s (not 120 s) to keep the run short on a shared 2-core box; the peak is
reached within the first seconds of a steady-state ladder encode, so the figure does not depend
on the length. Pass --seconds 120 for the full-length figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


def _tree_rss(root: int) -> int:
    children: dict[int, list[int]] = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                stat = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(stat[1]), []).append(int(p))
    total, stack = 0, list(children.get(root, []))
    while stack:
        pid = stack.pop()
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
        stack += children.get(pid, [])
    return total


@contextmanager
def peak_children_rss() -> Iterator[list[int]]:
    """Peak RSS of this process's descendants while the block runs."""
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss(os.getpid()))
            time.sleep(0.02)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        yield peak
    finally:
        stop.set()
        t.join()


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
    a = ap.parse_args()
    work = a.workdir or Path(tempfile.mkdtemp(prefix="ebbtide-limits-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    src = generate_clip(work / "clip1080.mp4", seconds=a.seconds, width=1920, height=1080)
    cfg = MediaConfig(encoder="libx264")
    info = probe_isolated(src, cfg.limits)
    ladder = plan_ladder(info, cfg)
    fmt = container_of(src)
    opts = encode_options(cfg, ladder, "libx264", fmt)
    budget = time_budget(info.duration, 1.0, cfg.limits)
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
            with peak_children_rss() as peak:
                fn()
            runs[name].append((peak[0], time.monotonic() - t0))
    with peak_children_rss() as probe_peak:
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
