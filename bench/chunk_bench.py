"""Chunked vs whole: the same ladder encoded (a) by one worker pinned to one core, and (b) split
in two chunks on two workers each pinned to its own core (worker 2 also encodes the audio, once,
and so gets the shorter chunk, as the worker's split plans it).

Prints wall time, speed-up, bytes, per-rung VMAF (each rendition upscaled to the source size,
libvmaf) and whether both pass validation; (a) is the baseline of the same run. Runs are
interleaved (a, b, a, b, …) because the machine is shared: the median of each is reported.

    PYTHONPATH=src .venv/bin/python bench/chunk_bench.py                 # the issue's 10 minutes
    PYTHONPATH=src .venv/bin/python bench/chunk_bench.py --seconds 60 --repeats 2   # a quick run

Both sides use the same ladder, preset, x264 threads and no storyboard. Besides wall time it
prints each side's ffmpeg CPU seconds (from wait4: those processes only, not the machine's):
(b) doing about the same CPU work as (a) shows the split adds little, and the busiest worker's
CPU seconds are the wall time each side would take with its cores to itself. On a machine loaded
by others, (a) also profits from the other jobs moving to the core it leaves free, which (b) does
not leave, so the wall ratio there understates the split: compare the CPU rows too.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ebbtide.config import MediaConfig
from ebbtide.media.chunked import stitch_folder
from ebbtide.media.chunks import audio_command, audio_share, chunk_command, last_chunk_weight, plan_chunks
from ebbtide.media.command import EncodeOptions, build_command, split_threads
from ebbtide.media.ffmpeg import ffmpeg_path
from ebbtide.media.hls import write_master
from ebbtide.media.ladder import Ladder, plan_ladder
from ebbtide.media.probe import probe
from ebbtide.media.samples import generate_clip
from ebbtide.media.stitch import read_outputs
from ebbtide.media.validate import validate_hls


def pinned(core: int) -> Callable[[], None]:
    """What `taskset -c CORE` does, for the child ffmpeg."""
    return lambda: os.sched_setaffinity(0, {core})


CPU: dict[str, float] = {}  # CPU seconds (user + sys) of each ffmpeg, by label, from wait4
CORE: dict[int, float] = {}  # the same, summed per core (per worker)
CPU_LOCK = threading.Lock()


def ff(args: list[str], core: int, label: str) -> None:
    """One ffmpeg pinned to `core`; its own CPU seconds (not the machine's) go to CPU[label]."""
    t = time.monotonic()
    p = subprocess.Popen([ffmpeg_path(), "-hide_banner", "-nostdin", *args], preexec_fn=pinned(core))
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise subprocess.CalledProcessError(p.returncode, label)
    with CPU_LOCK:
        CPU[label] = ru.ru_utime + ru.ru_stime
        CORE[core] = CORE.get(core, 0.0) + CPU[label]
        CPU[label + " wall"] = time.monotonic() - t


def opts(ladder: Ladder, preset: str) -> EncodeOptions:
    return EncodeOptions(
        preset=preset, threads=split_threads(ladder.rungs, 1), storyboard=False, progress=False
    )


def whole(src: Path, out: Path, ladder: Ladder, preset: str) -> Path:
    ff(build_command(src, out, ladder, opts(ladder, preset)), core=0, label="a")
    write_master(out, ladder)
    return out


def chunked(src: Path, out: Path, ladder: Ladder, preset: str) -> Path:
    # as the worker's split plans them: the last chunk leaves room for the audio job
    last = last_chunk_weight(2, audio_share(ladder, "libx264"))
    chunks = plan_chunks(ladder.duration, ladder.fps, ladder.gop_frames, ladder.segment_seconds, 2,
                         last_weight=last)  # fmt: skip
    o = opts(ladder, preset)
    errors: list[BaseException] = []

    def worker(core: int) -> None:
        try:
            # the audio job is queued first: the worker that takes it then takes the last chunk
            if core == 1 and ladder.audio is not None:
                ff(audio_command(str(src), out / "a/x", ladder), core, "b audio")
            c = chunks[core]
            ff(chunk_command(str(src), out / f"c/{c.index:03d}", ladder, o, c), core, f"b chunk {c.index}")
        except BaseException as e:  # reported after both finish
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(core,)) for core in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    names = [r.name for r in ladder.rungs]
    parts = [
        read_outputs(out / f"c/{c.index:03d}", names, c.index).with_prefix(f"c/{c.index:03d}/")
        for c in chunks
    ]
    audio = read_outputs(out / "a/x", ["audio"], -1).with_prefix("a/x/") if ladder.audio else None
    stitch_folder(out, "s", ladder, parts, audio, final=True)
    return out / "s"


def total_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.suffix in (".m4s", ".mp4", ".ts"))


def vmaf(playlist: Path, src: Path, width: int, height: int, subsample: int) -> float:
    graph = (
        f"[0:v]scale={width}:{height}:flags=bicubic,setpts=PTS-STARTPTS[d];"
        f"[1:v]setpts=PTS-STARTPTS[r];[d][r]libvmaf=n_subsample={subsample}:n_threads=2"
    )
    res = subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-nostdin", "-allowed_extensions", "ALL", "-i", str(playlist),
         "-i", str(src), "-lavfi", graph, "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    m = re.search(r"VMAF score: ([\d.]+)", res.stderr)
    if not m:
        raise RuntimeError(f"no VMAF score: {res.stderr[-400:]}")
    return float(m.group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=600.0, help="source length, s (the issue: 600)")
    ap.add_argument("--repeats", type=int, default=2, help="interleaved runs of each")
    ap.add_argument("--preset", default=MediaConfig().preset)
    ap.add_argument("--subsample", type=int, default=5, help="VMAF on every Nth frame")
    args = ap.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs two cores to pin the two workers to")
    with tempfile.TemporaryDirectory(prefix="chunk-bench-") as tmp:
        root = Path(tmp)
        t0 = time.monotonic()
        src = generate_clip(root / "src.mp4", seconds=args.seconds, width=1280, height=720, fps=30,
                            noise=8, preset="ultrafast", crf=20, gop=60)  # fmt: skip
        print(f"source: {args.seconds:g} s 720p30 with motion and noise, {src.stat().st_size / 1e6:.1f} MB "
              f"(generated in {time.monotonic() - t0:.0f} s)")  # fmt: skip
        info = probe(src)
        ladder = plan_ladder(info, MediaConfig(preset=args.preset))
        walls: dict[str, list[float]] = {"a": [], "b": []}
        cpus: dict[str, list[float]] = {"a": [], "b": []}
        paths: dict[str, list[float]] = {"a": [], "b": []}  # the busiest worker's CPU seconds
        outs: dict[str, Path] = {}
        for i in range(args.repeats):
            for name, fn in (("a", whole), ("b", chunked)):
                out = root / f"{name}{i}"
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                CPU.clear()
                CORE.clear()
                load = os.getloadavg()[0]
                t = time.monotonic()
                outs[name] = fn(src, out, ladder, args.preset)
                walls[name].append(time.monotonic() - t)
                cpu = {k: round(v, 1) for k, v in CPU.items()}
                cpus[name].append(sum(v for k, v in CPU.items() if not k.endswith(" wall")))
                paths[name].append(max(CORE.values()))
                print(f"  run {i + 1} {name}: {walls[name][-1]:.1f} s wall (load avg {load:.1f}); "
                      f"ffmpeg CPU s and wall s: {cpu}", flush=True)  # fmt: skip
        checks = {}
        for name, folder in outs.items():
            try:
                validate_hls(folder, info.duration)
                checks[name] = "pass"
            except Exception as e:  # printed, and the bench exits non-zero
                checks[name] = f"FAIL: {e}"
        a_wall, b_wall = statistics.median(walls["a"]), statistics.median(walls["b"])
        a_bytes = total_bytes(outs["a"])
        b_bytes = total_bytes(outs["b"].parent)
        print()
        print(f"{'':24}{'(a) 1 worker, 1 core':>22}{'(b) 2 chunks, 2 cores':>24}{'b vs a':>10}")
        print(f"{'wall s (median)':24}{a_wall:>22.1f}{b_wall:>24.1f}{a_wall / b_wall:>9.2f}x")
        a_cpu, b_cpu = statistics.median(cpus["a"]), statistics.median(cpus["b"])
        print(f"{'ffmpeg CPU s (median)':24}{a_cpu:>22.1f}{b_cpu:>24.1f}{b_cpu / a_cpu:>9.2f}x")
        a_path, b_path = statistics.median(paths["a"]), statistics.median(paths["b"])
        print(f"{'busiest worker CPU s':24}{a_path:>22.1f}{b_path:>24.1f}{a_path / b_path:>9.2f}x")
        print(f"{'bytes':24}{a_bytes:>22,}{b_bytes:>24,}{b_bytes / a_bytes:>9.3f}x")
        for r in ladder.rungs:
            va = vmaf(outs["a"] / r.name / "index.m3u8", src, info.width, info.height, args.subsample)
            vb = vmaf(outs["b"] / r.name / "index.m3u8", src, info.width, info.height, args.subsample)
            print(f"{'VMAF ' + r.name:24}{va:>22.2f}{vb:>24.2f}{vb - va:>+10.2f}")
        print(f"{'validation':24}{checks['a']:>22}{checks['b']:>24}")
        print(f"\nall walls a: {[round(w, 1) for w in walls['a']]}, b: {[round(w, 1) for w in walls['b']]}")
        return 0 if set(checks.values()) == {"pass"} else 1


if __name__ == "__main__":
    raise SystemExit(main())
