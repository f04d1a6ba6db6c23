"""The ffmpeg command for a whole ladder: one process, one decode, every rung, thumbnail and storyboard.

Pure: a Ladder in, an argv out, so the CPU and NVENC shapes are unit-tested without a GPU.

Why it is fast on a small CPU:
- one decode feeds every rung through `split`;
- scaling is a cascade (1080→720→480→360), each rung scaled from the one above, so the
  expensive large-ratio scales from the source happen once;
- bicubic scaling: measured, bilinear saves ~2 % CPU but costs 5-19 VMAF points on the lower
  rungs (VMAF rewards the detail bicubic keeps), so the "fast scaler" is not worth it;
- the 10-bit → 8-bit conversion happens once, before the split;
- frame-rate conversion (VFR → CFR, halving) is the output's `-fps_mode cfr -r`, not an `fps`
  filter in the graph: on a timestamp gap the filter emits every copy at once and the sibling
  branches of the split buffer them all (measured: 2 GB in 20 s on a 10-minute gap of 1080p
  black, growing); at the output the copies are made one by one as each encoder takes them
  (flat at ~410 MB on the same file);
- the input's demuxer is forced from the allowlist (`containers.py`), so a playlist or list
  can never make ffmpeg open a second file;
- x264 threads are split across the encoders in proportion to their pixels, instead of each
  encoder starting `1.5 x cores` frame threads that fight over the same cores;
- the 720p-and-up rungs use x264 `subme=1` (SAD instead of SATD for mode decisions): about
  30 % less x264 CPU for the whole ladder at no VMAF loss on those rungs (measured within
  ±0.2 of the preset's subme=2); the small rungs keep the preset's subme, where the saving is
  small and subme=1 cost ~0.5 VMAF at 360p;
- audio is encoded once and shared by every rung through one EXT-X-MEDIA group;
- the storyboard is a tap on the smallest rung (already scaled), not another decode; it is
  written as single frames and tiled afterwards, because ffmpeg prints no progress until every
  output has its first frame (a tiled sprite would hold that back until the end);
- the thumbnail is a separate tiny ffmpeg that seeks straight to 10 %, for the same reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ebbtide.media.containers import ffmpeg_input
from ebbtide.media.ladder import Ladder, RungPlan

AUDIO_GROUP = "aud"
AUDIO_NAME = "audio"
STORYBOARD_INTERVAL = 10.0
STORYBOARD_TILE_LONG = 160  # pixels on the long side of one storyboard tile
STORYBOARD_MAX_COLS = 10
THUMBNAIL_MAX_SHORT = 720
PLAYLIST = "index.m3u8"
MASTER = "master.m3u8"
THUMBNAIL = "thumbnail.jpg"
STORYBOARD = "storyboard.jpg"
STORYBOARD_FRAMES = ".storyboard"  # scratch folder inside outdir, removed after tiling


@dataclass(frozen=True)
class StoryboardPlan:
    interval: float
    count: int
    cols: int
    rows: int
    tile_width: int
    tile_height: int


@dataclass(frozen=True)
class EncodeOptions:
    encoder: str = "libx264"  # or "h264_nvenc"
    preset: str = "veryfast"
    scale_flags: str = "bicubic"
    threads: tuple[int, ...] | None = None  # x264 threads per rung; None = x264's own choice
    light_subme_from: int | None = 720  # x264 subme=1 on rungs whose short side is ≥ this; None = off
    storyboard: bool = True
    progress: bool = True
    input_format: str = "mov"  # the allowlisted demuxer forced on the input (containers.sniff)
    max_pixels: int | None = None  # decoder refuses larger frames (media.limits.max_pixels)


def plan_storyboard(ladder: Ladder) -> StoryboardPlan | None:
    """One frame every 10 s, tiled up to 10 wide; None when it would hold a single frame."""
    count = int(max(0.0, ladder.duration - 0.05) // STORYBOARD_INTERVAL) + 1
    if count < 2:
        return None
    cols = min(count, STORYBOARD_MAX_COLS)
    rows = math.ceil(count / cols)
    w, h = ladder.source_width, ladder.source_height
    if w >= h:
        tw, th = STORYBOARD_TILE_LONG, max(2, round(STORYBOARD_TILE_LONG * h / w / 2) * 2)
    else:
        tw, th = max(2, round(STORYBOARD_TILE_LONG * w / h / 2) * 2), STORYBOARD_TILE_LONG
    return StoryboardPlan(STORYBOARD_INTERVAL, count, cols, rows, tw, th)


def thumbnail_rung(ladder: Ladder) -> int:
    """Index of the largest rung whose short side is ≤ 720 (the smallest rung if none is)."""
    for i, r in enumerate(ladder.rungs):
        if min(r.width, r.height) <= THUMBNAIL_MAX_SHORT:
            return i
    return len(ladder.rungs) - 1


def split_threads(rungs: tuple[RungPlan, ...], cores: int) -> tuple[int, ...]:
    """x264 threads per rung, in proportion to pixels, summing to about `cores + 1`.

    x264's default (1.5 x cores frame threads per encoder) oversubscribes when four encoders and
    the decoder share a few cores: 16+ threads thrash caches and frame threads cost a little
    quality, for no extra throughput. Each encoder gets just enough threads that no single one
    becomes the critical path: on 2 cores the 1080p encoder (57 % of the pixels) gets 2 so it
    can use a core the small rungs leave idle, the others 1.
    """
    budget = max(1, cores + 1)
    total = sum(r.pixels for r in rungs) or 1
    return tuple(max(1, round(budget * r.pixels / total)) for r in rungs)


def _fmt_fps(ladder: Ladder) -> str:
    f = ladder.fps
    return f"{f.numerator}/{f.denominator}" if f.denominator != 1 else str(f.numerator)


def storyboard_select(interval: float) -> str:
    """The storyboard's `select`: the first frame, then the first one `interval` after the last pick.

    select, not fps=: fps holds each frame back until it sees the next interval, which would
    delay ffmpeg's first progress report by one interval.
    """
    return f"select='isnan(prev_selected_t)+gte(t-prev_selected_t\\,{interval:g})'"


def build_filtergraph(
    ladder: Ladder, opts: EncodeOptions, select: str | None = None
) -> tuple[str, list[str], str | None]:
    """The filter graph and its output labels: (graph, rung labels, storyboard label).

    `select` replaces the storyboard's frame picker (chunks pick on the source's 10 s grid).
    """
    gpu = opts.encoder == "h264_nvenc"
    pre: list[str] = []
    if ladder.to_8bit and not gpu:
        pre.append("format=yuv420p")

    def scale(r: RungPlan, first: bool) -> str:
        if gpu:
            fmt = ":format=yuv420p" if ladder.to_8bit and first else ""
            return f"scale_cuda={r.width}:{r.height}{fmt}"
        return f"scale={r.width}:{r.height}:flags={opts.scale_flags}"

    n = len(ladder.rungs)
    sb = plan_storyboard(ladder) if opts.storyboard else None
    sb_i = n - 1 if sb else None
    parts: list[str] = []
    rung_labels = [f"v{i}" for i in range(n)]
    src = "[0:v]"
    for i, r in enumerate(ladder.rungs):
        chain = list(pre) if i == 0 else []
        same_as_input = (r.width, r.height) == (ladder.source_width, ladder.source_height)
        # The top rung at source size needs no scale (on the GPU, scale_cuda also converts 10-bit).
        if i > 0 or not same_as_input or (gpu and ladder.to_8bit):
            chain.append(scale(r, i == 0))
        taps = [rung_labels[i]]
        if sb_i == i:
            taps.append("sq")
        if i + 1 < n:
            taps.append(f"c{i}")
        body = ",".join(chain) or "null"
        outs = "".join(f"[{t}]" for t in taps)
        parts.append(f"{src}{body}{',split=' + str(len(taps)) if len(taps) > 1 else ''}{outs}")
        src = f"[c{i}]"
    down = "hwdownload,format=nv12,format=yuv420p," if gpu else ""
    sb_label = None
    if sb is not None:
        # A scale (not a bare format=) converts the range, so full-range JPEG never leaks
        # back through the split into the video rungs.
        parts.append(
            f"[sq]{select or storyboard_select(sb.interval)},{down}"
            f"scale={sb.tile_width}:{sb.tile_height}:flags={opts.scale_flags}:out_range=full,"
            f"format=yuvj420p[sb]"
        )
        sb_label = "sb"
    return ";".join(parts), rung_labels, sb_label


def _video_codec_args(i: int, r: RungPlan, ladder: Ladder, opts: EncodeOptions) -> list[str]:
    s = f":v:{i}"
    args = [
        f"-c{s}", opts.encoder,
        f"-b{s}", f"{r.bitrate_kbps}k",
        f"-maxrate{s}", f"{r.maxrate_kbps}k",
        f"-bufsize{s}", f"{r.bufsize_kbps}k",
    ]  # fmt: skip
    if opts.encoder == "libx264" and opts.threads is not None:
        args += [f"-threads{s}", str(opts.threads[i])]
    if opts.encoder == "libx264" and light_subme(r, opts):
        args += [f"-x264-params{s}", "subme=1"]
    return args


def light_subme(r: RungPlan, opts: EncodeOptions) -> bool:
    """Whether this rung's x264 uses subme=1 (the big rungs, where most of the CPU goes)."""
    return opts.light_subme_from is not None and min(r.width, r.height) >= opts.light_subme_from


def _encoder_common(ladder: Ladder, opts: EncodeOptions) -> list[str]:
    g = str(ladder.gop_frames)
    if opts.encoder == "h264_nvenc":
        return [
            "-preset:v", "p4", "-tune:v", "hq", "-rc:v", "vbr", "-profile:v", "high",
            "-g:v", g, "-bf:v", "2", "-forced-idr:v", "1", "-no-scenecut:v", "1",
            "-force_key_frames:v", f"expr:gte(t,n_forced*{ladder.gop_seconds:g})",
        ]  # fmt: skip
    return [
        "-preset:v", opts.preset, "-profile:v", "high",
        "-g:v", g, "-keyint_min:v", g, "-sc_threshold:v", "0",
    ]  # fmt: skip


def build_command(src: Path, outdir: Path, ladder: Ladder, opts: EncodeOptions) -> list[str]:
    """ffmpeg arguments (without the binary) writing the HLS set, thumbnail and storyboard to outdir."""
    gpu = opts.encoder == "h264_nvenc"
    graph, rung_labels, sb = build_filtergraph(ladder, opts)
    args: list[str] = ["-y", "-loglevel", "error"]
    if opts.progress:
        args += ["-progress", "pipe:1", "-nostats", "-stats_period", "0.5"]
    if gpu:
        args += ["-hwaccel", "cuda", "-hwaccel_output_format", "cuda", "-extra_hw_frames", "8"]
    args += ffmpeg_input(src, opts.input_format, opts.max_pixels)
    args += ["-filter_complex", graph]
    for label in rung_labels:
        args += ["-map", f"[{label}]"]
    if ladder.audio is not None:
        a = ladder.audio
        d = f"{ladder.duration:.3f}"
        args += [
            "-map", "0:a:0", "-c:a", a.codec, "-profile:a", a.profile, "-b:a", f"{a.bitrate_kbps}k",
            "-ac", str(a.channels), "-ar", str(a.sample_rate),
            # Audio lasts exactly as long as the video: a longer or shorter track in the upload
            # must not make the renditions disagree about the duration.
            "-filter:a", f"atrim=end={d},apad=whole_dur={d}",
        ]  # fmt: skip
    for i, r in enumerate(ladder.rungs):
        args += _video_codec_args(i, r, ladder, opts)
    args += _encoder_common(ladder, opts)
    if ladder.resample_fps:
        args += ["-fps_mode:v", "cfr", "-r:v", _fmt_fps(ladder)]
    args += ["-map_metadata", "-1", "-map_chapters", "-1"]
    fmp4 = ladder.segment_format == "fmp4"
    ext = "m4s" if fmp4 else "ts"
    streams = []
    for i, r in enumerate(ladder.rungs):
        streams.append(
            f"v:{i},agroup:{AUDIO_GROUP},name:{r.name}" if ladder.audio else f"v:{i},name:{r.name}"
        )
    if ladder.audio is not None:
        streams.append(f"a:0,agroup:{AUDIO_GROUP},name:{AUDIO_NAME}")
    args += [
        "-f", "hls",
        "-hls_time", f"{ladder.segment_seconds:g}",
        "-hls_playlist_type", "vod",
        "-hls_flags", "independent_segments",
        "-hls_segment_type", "fmp4" if fmp4 else "mpegts",
    ]  # fmt: skip
    if fmp4:
        args += ["-hls_fmp4_init_filename", "init.mp4"]
    args += [
        "-hls_segment_filename", str(outdir / "%v" / f"seg_%05d.{ext}"),
        "-master_pl_name", MASTER,
        "-var_stream_map", " ".join(streams),
        str(outdir / "%v" / PLAYLIST),
    ]  # fmt: skip
    if sb:
        frames = outdir / STORYBOARD_FRAMES / "%05d.jpg"
        args += ["-map", f"[{sb}]", "-fps_mode", "passthrough", "-q:v", "5", str(frames)]
    return args


def thumbnail_command(
    src: Path, out: Path, ladder: Ladder, scale_flags: str = "bicubic", from_start: bool = False,
    input_format: str = "mov", max_pixels: int | None = None,
) -> list[str]:
    """One JPEG at 10 % of the duration (or the first frame), at the size of the largest rung ≤ 720p.

    `-ss` before `-i` seeks to the keyframe before the instant and decodes only from there. A video
    of one or a few frames has nothing at or after 10 %; `from_start` takes its first frame instead.
    """
    r = ladder.rungs[thumbnail_rung(ladder)]
    at = 0.0 if from_start else round(0.1 * ladder.duration, 3)
    seek = [] if at == 0 else ["-ss", f"{at:g}"]
    vf = f"scale={r.width}:{r.height}:flags={scale_flags}:out_range=full,format=yuvj420p"
    return [
        "-y", "-loglevel", "error", *seek, *ffmpeg_input(src, input_format, max_pixels),
        "-map", "0:v:0",
        "-frames:v", "1", "-vf", vf, "-q:v", "3", "-update", "1", str(out),
    ]  # fmt: skip


def sprite_grid(count: int) -> tuple[int, int]:
    """Columns and rows of a sprite of `count` tiles: up to 10 wide, rows as needed."""
    cols = max(1, min(count, STORYBOARD_MAX_COLS))
    return cols, math.ceil(count / cols)


def storyboard_command(frames_dir: Path, out: Path, count: int, quality: int = 5) -> list[str]:
    """Tile the storyboard frames (written during the encode) into one sprite, up to 10 wide."""
    cols, rows = sprite_grid(count)
    return [
        "-y", "-loglevel", "error", "-framerate", "1", "-i", str(frames_dir / "%05d.jpg"),
        "-vf", f"tile={cols}x{rows}", "-frames:v", "1", "-q:v", str(quality), "-update", "1", str(out),
    ]  # fmt: skip


def storyboard_join_command(strips: list[tuple[Path, int]], out: Path) -> list[str]:
    """One sprite from several (a chunked encode's per-chunk sprites of `count` tiles each, in
    order): cut each back into tiles, join them, and tile them as the unchunked encode does."""
    args = ["-y", "-loglevel", "error"]
    graph = []
    for i, (path, count) in enumerate(strips):
        cols, rows = sprite_grid(count)
        args += ["-i", str(path)]
        graph.append(f"[{i}:v]untile={cols}x{rows},setpts=N,trim=end_frame={count}[t{i}]")
    cols, rows = sprite_grid(sum(n for _, n in strips))
    joined = "".join(f"[t{i}]" for i in range(len(strips)))
    graph.append(f"{joined}concat=n={len(strips)}:v=1:a=0,tile={cols}x{rows}[sb]")
    return [
        *args, "-filter_complex", ";".join(graph), "-map", "[sb]",
        "-frames:v", "1", "-q:v", "5", "-update", "1", str(out),
    ]  # fmt: skip
