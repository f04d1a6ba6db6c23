"""Ladder bench: the same 1080p30 clip transcoded three ways, timed, and scored against the source.

  (a) naive   — one ffmpeg per rung, each decoding the source and encoding its own audio;
  (b) expert  — one hand-written ffmpeg: one decode, one `split`, four scales from the source,
                four libx264 outputs, one shared audio encode (x264 and scaler defaults);
  (c) ebbtide — ebbtide.media.pipeline.transcode (probe, plan, encode, thumbnail, storyboard,
                master rewrite, validation: everything it ships).

All three use the same x264 preset, bitrates, maxrate/bufsize, GOP and 6 s HLS segments, so
the quality columns compare like with like. Quality is VMAF (libvmaf, each rung upscaled to the
source size with bicubic), or PSNR if this ffmpeg has no libvmaf.

CPU-heavy: run it on an otherwise quiet machine for stable figures.

    ./.venv/bin/python bench/ladder_bench.py [--seconds 30] [--workdir DIR] [--no-quality] [--repeat 3]

With --repeat N the methods run interleaved (a b c a b c …) so machine noise hits all of them
alike; the table shows the median and the range, and the ratios use medians.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ebbtide.config import MediaConfig
from ebbtide.media.command import AUDIO_GROUP
from ebbtide.media.ffmpeg import ffmpeg_path
from ebbtide.media.ladder import Ladder, plan_ladder
from ebbtide.media.pipeline import transcode
from ebbtide.media.probe import probe
from ebbtide.media.samples import generate_clip


@dataclass
class Run:
    name: str
    wall: float = 0.0
    cpu: float = 0.0
    quality: dict[str, float] = field(default_factory=dict)
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)


def _cpu() -> float:
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    s = resource.getrusage(resource.RUSAGE_SELF)
    return c.ru_utime + c.ru_stime + s.ru_utime + s.ru_stime


def _ff(args: list[str]) -> None:
    subprocess.run([ffmpeg_path(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *args], check=True)


def _x264(ladder: Ladder, i: int, preset: str, spec: str) -> list[str]:
    r = ladder.rungs[i]
    g = str(ladder.gop_frames)
    return [
        f"-c:v{spec}", "libx264", f"-b:v{spec}", f"{r.bitrate_kbps}k",
        f"-maxrate:v{spec}", f"{r.maxrate_kbps}k", f"-bufsize:v{spec}", f"{r.bufsize_kbps}k",
        "-preset", preset, "-profile:v", "high",
        "-g", g, "-keyint_min", g, "-sc_threshold", "0",
    ]  # fmt: skip


def _hls(out: Path, seg: float, var_map: str | None) -> list[str]:
    args = [
        "-f", "hls", "-hls_time", f"{seg:g}", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
        "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", str(out / "%v" / "seg_%05d.m4s"),
    ]  # fmt: skip
    if var_map:
        args += ["-master_pl_name", "master.m3u8", "-var_stream_map", var_map]
    return [*args, str(out / "%v" / "index.m3u8")]


AUDIO = ["-c:a", "aac", "-b:a", "128k", "-ac", "2", "-ar", "48000"]


def naive(src: Path, out: Path, ladder: Ladder, preset: str) -> None:
    for i, r in enumerate(ladder.rungs):
        _ff([
            "-i", str(src), "-map", "0:v", "-map", "0:a", "-vf", f"scale={r.width}:{r.height}",
            *_x264(ladder, i, preset, ""), *AUDIO,
            *_hls(out / r.name, ladder.segment_seconds, "v:0,a:0,name:av"),
        ])  # fmt: skip


def expert(src: Path, out: Path, ladder: Ladder, preset: str) -> None:
    n = len(ladder.rungs)
    graph = f"[0:v]split={n}" + "".join(f"[s{i}]" for i in range(n))
    for i, r in enumerate(ladder.rungs):
        graph += f";[s{i}]scale={r.width}:{r.height}[v{i}]"
    args = ["-i", str(src), "-filter_complex", graph]
    for i in range(n):
        args += ["-map", f"[v{i}]"]
    args += ["-map", "0:a", *AUDIO]
    for i in range(n):
        args += _x264(ladder, i, preset, f":{i}")
    var_map = " ".join(f"v:{i},agroup:{AUDIO_GROUP},name:{r.name}" for i, r in enumerate(ladder.rungs))
    var_map += f" a:0,agroup:{AUDIO_GROUP},name:audio"
    _ff([*args, *_hls(out, ladder.segment_seconds, var_map)])


def has_vmaf() -> bool:
    res = subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-filters"], capture_output=True, text=True, check=False
    )
    return bool(re.search(r"\slibvmaf\s", res.stdout))


def score(
    playlist: Path, src: Path, width: int, height: int, vmaf: bool, subsample: int, seconds: float
) -> float:
    if vmaf:
        metric = f"libvmaf=n_subsample={subsample}:n_threads={os.cpu_count() or 1}"
        pattern = r"VMAF score: ([\d.]+)"
    else:
        metric = "psnr"
        pattern = r"PSNR .* average:([\d.]+|inf)"
    graph = (
        f"[0:v]scale={width}:{height}:flags=bicubic,setpts=PTS-STARTPTS[d];"
        f"[1:v]setpts=PTS-STARTPTS[r];[d][r]{metric}"
    )
    res = subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-nostdin", "-t", f"{seconds:g}", "-i", str(playlist),
         "-t", f"{seconds:g}", "-i", str(src),
         "-lavfi", graph, "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    m = re.search(pattern, res.stderr)
    if not m:
        raise RuntimeError(f"no score in ffmpeg output: {res.stderr[-500:]}")
    return float(m.group(1))


def timed(run: Run, fn: object, *a: object) -> None:
    c0, t0 = _cpu(), time.monotonic()
    fn(*a)  # type: ignore[operator]
    run.walls.append(time.monotonic() - t0)
    run.cpus.append(_cpu() - c0)
    run.wall, run.cpu = statistics.median(run.walls), statistics.median(run.cpus)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--preset", default=MediaConfig().preset)
    ap.add_argument("--no-quality", action="store_true")
    ap.add_argument("--subsample", type=int, default=3, help="VMAF: score every Nth frame")
    ap.add_argument("--quality-seconds", type=float, default=12.0, help="score the first N seconds")
    ap.add_argument("--only", default="abc", help="which methods to run, e.g. bc")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--repeat", type=int, default=1, help="run the methods N times, interleaved")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ladder-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    src = work / f"source_1080p30_{args.seconds:g}s.mp4"
    if not src.exists():
        print(f"generating {src.name} (testsrc2 + noise, sine audio)…", flush=True)
        generate_clip(
            src, seconds=args.seconds, width=1920, height=1080, fps=30, noise=6, crf=18, preset="veryfast"
        )
    cfg = MediaConfig(preset=args.preset)
    info = probe(src)
    ladder = plan_ladder(info, cfg)
    print(
        f"source: {info.width}x{info.height} {info.fps:g} fps {info.duration:.1f} s, "
        f"{info.bitrate / 1e6:.1f} Mb/s; cores: {os.cpu_count()}; preset {args.preset}",
        flush=True,
    )

    methods = {"a": ("naive", naive), "b": ("expert", expert), "c": ("ebbtide", None)}
    runs = {key: Run(methods[key][0]) for key in args.only}
    outs: dict[str, Path] = {}
    for rep in range(max(1, args.repeat)):
        for key, run in runs.items():
            name, fn = methods[key]
            out = work / name
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            print(
                f"running ({key}) {name} [{rep + 1}/{args.repeat}], load {os.getloadavg()[0]:.2f}…",
                flush=True,
            )
            if fn is None:
                timed(run, transcode, src, out, cfg)
            else:
                timed(run, fn, src, out, ladder, args.preset)
            outs[name] = out
            w, c = run.walls[-1], run.cpus[-1]
            print(f"  wall {w:6.1f} s   cpu {c:6.1f} s   ({info.duration / w:.2f}x realtime)", flush=True)

    if not args.no_quality:
        vmaf = has_vmaf()
        label = "VMAF" if vmaf else "PSNR dB"
        print(f"scoring each rung against the source ({label}, first {args.quality_seconds:g} s, "
              f"every {args.subsample} frames)…", flush=True)  # fmt: skip
        for run in runs.values():
            for r in ladder.rungs:
                base = outs[run.name] / r.name
                pl = base / "av" / "index.m3u8" if run.name == "naive" else base / "index.m3u8"
                run.quality[r.name] = score(
                    pl, src, info.width, info.height, vmaf, args.subsample, args.quality_seconds
                )

    print()
    header = f"{'method':<9}{'wall s':>8}{'cpu s':>8}{'wall range':>14}" + "".join(
        f"{r.name:>8}" for r in ladder.rungs
    )
    print(header)
    for run in runs.values():
        q = "".join(f"{run.quality.get(r.name, float('nan')):>8.2f}" for r in ladder.rungs)
        span = f"{min(run.walls):.1f}-{max(run.walls):.1f}"
        print(f"{run.name:<9}{run.wall:>8.1f}{run.cpu:>8.1f}{span:>14}{q}")
    by = {r.name: r for r in runs.values()}
    if "ebbtide" in by:
        e = by["ebbtide"]
        if "expert" in by:
            print(f"ebbtide / expert wall: {e.wall / by['expert'].wall:.2f}x (target <= 0.90)")
        if "naive" in by:
            print(f"naive / ebbtide wall:  {by['naive'].wall / e.wall:.2f}x faster (target >= 1.40)")
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in runs.values()], indent=2))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
