"""Chunked encoding: planning a long source into segment-aligned chunks, and their ffmpeg commands.

Pure: numbers and a Ladder in, plans and argv out (unit-tested without ffmpeg; the seamless-output
tests run them for real).

Why the chunks join without a re-encode or re-mux:
- every boundary is a whole number of segments *and* GOPs (frames, not seconds, so 29.97 fps
  rounds nowhere), so each chunk's first frame is a keyframe the unchunked encode would also have
  made, and the HLS muxer cuts segments at the same instants;
- the chunk keeps the source's timestamps (`-copyts -start_at_zero`, exact `trim` in frames of
  the output rate), so `tfdt` continues across the boundary and the segments of all chunks form
  one timeline;
- every chunk uses the same encoder settings and the same ladder (passed in the job, not
  re-planned per worker), so each rung's init segment (SPS/PPS) is byte-identical across chunks;
- audio is not in the chunks: it is encoded once by its own job (`audio_command`), so there are
  no AAC priming gaps at the boundaries;
- input seeking (`-ss` before `-i`, to the keyframe before the chunk) means a chunk reads only its
  part of the source, also over HTTP range requests on a presigned URL.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from ebbtide.media.command import (
    AUDIO_NAME,
    PLAYLIST,
    STORYBOARD_FRAMES,
    EncodeOptions,
    _encoder_common,
    _fmt_fps,
    _video_codec_args,
    build_filtergraph,
    plan_storyboard,
)
from ebbtide.media.errors import MediaError
from ebbtide.media.ladder import AudioPlan, Ladder, RungPlan

INIT = "init.mp4"
# frag_discont: `tfdt` carries the kept timestamps (the muxer would restart each file at 0);
# negative_cts_offsets: B-frame reordering as signed offsets instead of an edit list, so the init
# segment holds no start-dependent edit and is byte-identical in every chunk.
SEGMENT_OPTIONS = "movflags=+frag_discont+negative_cts_offsets"
SEEK_MARGIN = 0.5  # frames: a boundary instant minus half a frame never rounds past its frame


@dataclass(frozen=True)
class Chunk:
    index: int
    count: int
    start_frame: int  # in frames of the ladder's output rate
    end_frame: int | None  # exclusive; None = to the end of the source
    fps: Fraction
    first_segment: int  # the segment number the unchunked encode gives this chunk's first segment

    @property
    def start(self) -> float:
        return float(self.start_frame / self.fps)

    @property
    def end(self) -> float | None:
        return None if self.end_frame is None else float(self.end_frame / self.fps)

    def describe(self, duration: float) -> str:
        end = self.end if self.end is not None else duration
        return f"chunk {self.index + 1} of {self.count} ({self.start:.0f}-{end:.0f} s)"


def boundary_frames(fps: Fraction, gop_frames: int, segment_seconds: float) -> int:
    """The smallest step, in frames, that is a whole number of segments and of GOPs."""
    seg = max(1, round(segment_seconds * fps))
    return seg * gop_frames // math.gcd(seg, gop_frames)


@dataclass(frozen=True)
class PoolCapacity:
    """What a pool of workers offers a source about to be split (numbers only: media knows no fleet)."""

    idle: int  # workers up and free now
    launchable: int  # below the pool's max
    boot_time: float
    speed: float  # media seconds per wall second
    price_per_hour: float = 0.0  # 0: free capacity (the edge box, local workers), always used


# The first chunk's share of an equal one. < 1: the start plays sooner, the whole is ready a little
# later. `ebbtide sim`, one 2-hour match on the seeds' fleet at a 10-min target ($10/h): 1.0 →
# ready 12.2 min, first playable 12.0; 0.3 → ready 11.6, first playable 2.0 (pol2-tables.md).
FIRST_CHUNK_WEIGHT = 0.3


MAX_PAID_PLANNED = 16  # paid workers tried one more at a time (a long list only adds planning time)


@dataclass(frozen=True)
class SplitGoal:
    """What the fleet's policy buys speed for, and what a part costs (numbers only).

    `due` is how many seconds from now the upload should be ready (the deadline policy's
    `target_ready` minus the upload's age); `wait_value_per_hour` is what one hour past it is
    worth; infinite means "as fast as the workers allow" (policies that launch on queue depth)."""

    due: float = 0.0
    wait_value_per_hour: float = math.inf
    min_chunk_seconds: float = 120.0
    max_chunks: int = 32
    overhead_seconds: float = 15.0  # per part: process start, probe through a URL, seek, upload
    stitch_seconds: float = 10.0
    splitter_speed: float = 1.0  # the worker doing the split (it encodes the source whole if not split)
    splitter_price_per_hour: float = 0.0
    first_weight: float = FIRST_CHUNK_WEIGHT  # the first chunk's share of an equal one (`plan_chunks`)


@dataclass(frozen=True)
class SplitPlan:
    count: int  # chunks; 1 = encode in one piece
    workers: int  # workers the plan uses (the splitter included)
    ready: float  # estimated seconds from now to ready
    cost: float  # estimated dollars on paid workers (their boots included)
    first_playable: float  # estimated seconds from now to the first chunk


@dataclass(frozen=True)
class _Slot:
    free_at: float
    speed: float
    price: float  # per hour
    new: bool  # launched for this source: its boot is billed


def _estimate(duration: float, n: int, slots: Sequence[_Slot], goal: SplitGoal) -> SplitPlan:
    """Parts go, in order, to whichever worker is free first (the queue's dispatch)."""
    if n <= 1:
        t = duration / goal.splitter_speed
        return SplitPlan(1, 1, t, goal.splitter_price_per_hour * t / 3600.0, t)
    w = goal.first_weight
    lengths = [duration * (w if k == 0 else 1.0) / (w + n - 1) for k in range(n)]
    free = [s.free_at for s in slots]
    busy = [0.0] * len(slots)
    first = math.inf
    for k, length in enumerate(lengths):
        i = min(range(len(slots)), key=lambda j: (free[j], -slots[j].speed, j))  # first free takes it
        took = goal.overhead_seconds + length / slots[i].speed
        free[i] += took
        busy[i] += took
        if k == 0:
            first = free[i]
    used = [i for i, b in enumerate(busy) if b > 0]
    billed = [busy[i] + (slots[i].free_at if slots[i].new else 0.0) for i in range(len(slots))]
    cost = sum(slots[i].price * billed[i] / 3600.0 for i in used)
    ready = max(free[i] for i in used) + goal.stitch_seconds
    return SplitPlan(n, len(used), ready, cost, first)


def _score(plan: SplitPlan, goal: SplitGoal) -> tuple[float, float, float, int]:
    late = max(0.0, plan.ready - goal.due)
    if math.isinf(goal.wait_value_per_hour):
        return late, plan.cost, plan.ready, plan.count
    return plan.cost + late * goal.wait_value_per_hour / 3600.0, plan.ready, plan.first_playable, plan.count


def plan_split(duration: float, pools: Sequence[PoolCapacity], goal: SplitGoal) -> SplitPlan:
    """How many chunks, as the fleet will run them: a pure function of the duration, the workers
    the policy would use, their speeds and boot times, and the policy's trade-off.

    Free workers (idle, or launchable in a free pool) are always used, as the deadline policy uses
    them; paid ones are added cheapest first (an idle one before a launch), each prefix is tried
    with every chunk count, and the plan with the least cost plus lateness at its stated value
    wins (ties: sooner ready, then fewer chunks). So a paid worker the policy would not launch is
    never planned for, a split that cannot help (short source, or no other worker worth having)
    is not made, and with slow and fast workers mixed more chunks than workers balance the load.
    """
    whole = _estimate(duration, 1, (), goal)
    if duration <= 0 or goal.max_chunks <= 1 or goal.min_chunk_seconds <= 0:
        return whole
    most = min(goal.max_chunks, int(duration // goal.min_chunk_seconds))
    if most <= 1:
        return whole
    required = [_Slot(0.0, goal.splitter_speed, goal.splitter_price_per_hour, False)]
    optional: list[_Slot] = []
    for p in pools:
        speed = max(p.speed, 1e-6)
        idle = [_Slot(0.0, speed, p.price_per_hour, False)] * p.idle
        launch = [_Slot(p.boot_time, speed, p.price_per_hour, True)] * min(p.launchable, most)
        (required if p.price_per_hour <= 0 else optional).extend(idle + launch)
    optional.sort(key=lambda s: (s.price, s.new, s.free_at, -s.speed))
    best, best_score = whole, _score(whole, goal)
    for k in range(min(len(optional), most, MAX_PAID_PLANNED) + 1):
        slots = required + optional[:k]
        for n in range(2, most + 1):
            plan = _estimate(duration, n, slots, goal)
            score = _score(plan, goal)
            if score < best_score:
                best, best_score = plan, score
    return best


def useful_workers(pools: Sequence[PoolCapacity], duration: float) -> int:
    """The worker doing the split, the idle ones, and those worth launching: a worker whose boot
    takes more than half of what one worker needs for the whole source would arrive too late.
    (Kept for callers with no trade-off; `plan_split` is what the split uses.)"""
    n = 1
    for p in pools:
        n += p.idle
        if p.launchable > 0 and p.boot_time < duration / max(p.speed, 1e-6) / 2:
            n += p.launchable
    return n


def chunk_count(
    duration: float,
    workers: int,
    min_chunk_seconds: float,
    max_chunks: int,
) -> int:
    """How many chunks: one per useful worker, but none shorter than `min_chunk_seconds`.

    A clip shorter than two minimum chunks is never split: the split, per-chunk start-up and
    stitch would cost more than the parallelism gains.
    """
    if duration <= 0 or workers <= 1 or max_chunks <= 1 or min_chunk_seconds <= 0:
        return 1
    by_length = int(duration // min_chunk_seconds)
    return max(1, min(workers, max_chunks, by_length))


# The AAC encode of one media second costs about what x264 (veryfast) spends on this many pixels
# of ladder per media second. Measured with bench/chunk_bench.py on a 720p30 ladder
# (720p+480p+360p = 1.56 Mpx): audio 0.093 CPU s per media second, the video 0.96.
AUDIO_EQUIV_PIXELS = 150_000
MIN_LAST_WEIGHT = 0.25


def audio_share(ladder: Ladder, encoder: str) -> float:
    """The audio job's CPU work relative to the video of the same length (0: none, or NVENC,
    where the video is on the GPU and the audio does not compete with it)."""
    if ladder.audio is None or encoder != "libx264":
        return 0.0
    return AUDIO_EQUIV_PIXELS / max(1, sum(r.pixels for r in ladder.rungs))


def last_chunk_weight(count: int, share: float) -> float:
    """The audio job is queued before the chunks, so with one worker per chunk the worker that
    takes it takes the last chunk too: that chunk is shorter by the audio's work, so every worker
    finishes together. With n chunks of u video each and the last of w·u, the audio costs
    `share` x all the video: share·u·(n - 1 + w) + w·u = u  →  w = (1 - share·(n - 1)) / (1 + share)."""
    if count <= 1 or share <= 0:
        return 1.0
    return max(MIN_LAST_WEIGHT, (1 - share * (count - 1)) / (1 + share))


def plan_chunks(
    duration: float,
    fps: Fraction,
    gop_frames: int,
    segment_seconds: float,
    count: int,
    first_weight: float = 1.0,
    last_weight: float = 1.0,
) -> tuple[Chunk, ...]:
    """`count` chunks (fewer if the source is short) on segment- and GOP-aligned frame boundaries.

    The first chunk gets `first_weight` of an equal share: below 1 the start of the video plays
    sooner, but the other chunks grow and the whole is ready later (in `ebbtide sim`, one match
    at a 10-min target: weight 1 → ready 9.6 min, playable 9.4; 0.35 → 10.8 and 4.6).
    The last chunk gets `last_weight` of a share (`last_chunk_weight`: room for the audio job).
    """
    if duration <= 0 or fps <= 0:
        raise MediaError("cannot plan chunks of a source with no duration or frame rate")
    seg_frames = max(1, round(segment_seconds * fps))
    unit = boundary_frames(fps, gop_frames, segment_seconds)
    total = max(1, math.floor(duration * fps + 1e-6))
    units = max(1, math.ceil(total / unit))
    n = max(1, min(count, units))
    weights = [first_weight] + [1.0] * (n - 1)
    if n > 1:
        weights[-1] = last_weight
    cum = [sum(weights[:i]) / sum(weights) for i in range(n)]
    starts = [round(units * c) * unit for c in cum]
    if any(b <= a for a, b in itertools.pairwise(starts)):  # too short to weigh
        starts = [round(i * units / n) * unit for i in range(n)]
    out = []
    for i, s in enumerate(starts):
        end = starts[i + 1] if i + 1 < n else None
        out.append(Chunk(i, n, s, end, fps, s // seg_frames))
    return tuple(out)


# ---- the ladder travels in the job payload, so every chunk encodes with the same plan -----------
def ladder_to_json(ladder: Ladder) -> dict[str, Any]:
    d = asdict(ladder)
    d["fps"] = f"{ladder.fps.numerator}/{ladder.fps.denominator}"
    return d


def ladder_from_json(d: dict[str, Any]) -> Ladder:
    try:
        rungs = tuple(RungPlan(**r) for r in d["rungs"])
        audio = AudioPlan(**d["audio"]) if d.get("audio") else None
        return Ladder(
            **{**d, "rungs": rungs, "audio": audio, "fps": Fraction(str(d["fps"]))},
        )
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as e:
        raise MediaError(f"the chunk job's ladder does not parse: {e}") from e


def chunk_to_json(c: Chunk) -> dict[str, Any]:
    return {
        "index": c.index, "count": c.count, "start_frame": c.start_frame, "end_frame": c.end_frame,
        "fps": f"{c.fps.numerator}/{c.fps.denominator}", "first_segment": c.first_segment,
    }  # fmt: skip


def chunk_from_json(d: dict[str, Any]) -> Chunk:
    try:
        end = d.get("end_frame")
        return Chunk(
            int(d["index"]), int(d["count"]), int(d["start_frame"]), None if end is None else int(end),
            Fraction(str(d["fps"])), int(d["first_segment"]),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as e:
        raise MediaError(f"the chunk job's range does not parse: {e}") from e


# ---- commands ------------------------------------------------------------------------------------
def _trim(c: Chunk) -> str:
    """Exact frame range on the source's own (zero-based) timestamps."""
    half = Fraction(SEEK_MARGIN) / c.fps
    parts = [f"start={float(c.start_frame / c.fps - half):.6f}"] if c.start_frame > 0 else []
    if c.end_frame is not None:
        parts.append(f"end={float(c.end_frame / c.fps - half):.6f}")
    return "trim=" + ":".join(parts) if parts else "null"


def chunk_storyboard(ladder: Ladder, c: Chunk) -> range:
    """Indices of the storyboard frames (one at 0, 10, 20 s… of the source, as the unchunked
    encode picks them) that fall inside this chunk; empty when there is no storyboard."""
    sb = plan_storyboard(ladder)
    if sb is None:
        return range(0)
    half = SEEK_MARGIN / float(c.fps)
    end = c.end if c.end is not None else ladder.duration
    first = math.ceil((c.start - half) / sb.interval)
    return range(first, max(first, math.ceil((end - half) / sb.interval)))


def grid_select(interval: float, fps: Fraction) -> str:
    """Pick the first frame at or after each multiple of `interval` on the source's timeline: a
    chunk's first frame if it sits on one, then every frame that crosses into a new interval."""
    h = f"{SEEK_MARGIN / float(fps):.6f}"
    w = f"{interval:g}"
    return (
        f"select='if(isnan(prev_t)\\,lt(mod(t+{h}\\,{w})\\,2*{h})"
        f"\\,gt(floor((t+{h})/{w})\\,floor((prev_t+{h})/{w})))'"
    )


def chunk_filtergraph(ladder: Ladder, opts: EncodeOptions, c: Chunk) -> tuple[str, list[str], str | None]:
    """The whole-ladder graph with an exact trim in front; a storyboard tap only when a storyboard
    frame falls in the chunk. With fps resampling the fps filter moves ahead of the trim, so the
    trim counts frames of the output rate; trim only reads timestamps, so it also passes CUDA
    frames untouched on the GPU path."""
    plan = plan_storyboard(ladder) if opts.storyboard else None
    select = grid_select(plan.interval, ladder.fps) if plan and chunk_storyboard(ladder, c) else None
    graph, labels, sb_label = build_filtergraph(ladder, replace(opts, storyboard=bool(select)), select)
    trim = _trim(c)
    if ladder.resample_fps:
        fps = f"fps={_fmt_fps(ladder)}"
        head = f"[0:v]{fps},{trim}[src];"
        first, sep, rest = graph.partition(";")
        first = first.replace(fps + ",", "", 1).replace(fps, "null", 1)
        graph = first + sep + rest
    else:
        head = f"[0:v]{trim}[src];"
    return head + graph.replace("[0:v]", "[src]", 1), labels, sb_label


def chunk_command(src: str, outdir: Path, ladder: Ladder, opts: EncodeOptions, c: Chunk) -> list[str]:
    """ffmpeg arguments encoding every rung of one chunk to fMP4/TS HLS segments in outdir/<rung>/.

    Segments are numbered as the unchunked encode numbers them (`-start_number`), so the chunks'
    files never collide and the stitched playlist lists them in order.
    """
    gpu = opts.encoder == "h264_nvenc"
    graph, labels, sb = chunk_filtergraph(ladder, opts, c)
    args: list[str] = ["-y", "-loglevel", "error"]
    if opts.progress:
        args += ["-progress", "pipe:1", "-nostats", "-stats_period", "0.5"]
    if gpu:
        args += ["-hwaccel", "cuda", "-hwaccel_output_format", "cuda", "-extra_hw_frames", "8"]
    if c.start_frame > 0:
        # Input seeking to the keyframe before the chunk: reads only from there. Not accurate:
        # the trim filter does the exact cut on the kept timestamps.
        seek = max(0.0, float(c.start_frame / c.fps) - 1.0)
        args += ["-noaccurate_seek", "-ss", f"{seek:.6f}"]
    if c.end_frame is not None:
        # Stop reading a second after the chunk's end (the trim drops the rest). With -copyts
        # ffmpeg compares the input's -t against the kept (absolute) timestamps, so it is an end.
        args += ["-t", f"{float(c.end_frame / c.fps) + 1.0:.6f}"]
    args += ["-copyts", "-start_at_zero", "-i", src, "-filter_complex", graph]
    for label in labels:
        args += ["-map", f"[{label}]"]
    for i, r in enumerate(ladder.rungs):
        args += _video_codec_args(i, r, ladder, opts)
    args += _encoder_common(ladder, opts)
    if gpu:
        # NVENC's own keyframe expression counts from the chunk's first frame; force the cut
        # instants on the source timeline instead, as the unchunked encode does.
        k = args.index("-force_key_frames:v")
        args[k + 1] = f"expr:gte(t-{c.start:.6f},n_forced*{ladder.gop_seconds:g})"
    args += ["-map_metadata", "-1", "-map_chapters", "-1", "-an", "-sn", "-dn"]
    streams = [f"v:{i},name:{r.name}" for i, r in enumerate(ladder.rungs)]
    args += hls_args(ladder, outdir, streams, start_number=c.first_segment)
    if sb:  # the chunk's storyboard frames, tiled into its own sprite afterwards
        frames = outdir / STORYBOARD_FRAMES / "%05d.jpg"
        args += ["-map", f"[{sb}]", "-fps_mode", "passthrough", "-q:v", "2", str(frames)]
    return args


def hls_args(
    ladder: Ladder, outdir: Path, streams: list[str], start_number: int = 0, shift: str = "disabled"
) -> list[str]:
    """The HLS muxer writing one folder per stream; the playlists it writes are only read by stitch.

    `shift` is `-avoid_negative_ts`: a chunk keeps the source's timestamps (`disabled`).
    """
    fmp4 = ladder.segment_format == "fmp4"
    ext = "m4s" if fmp4 else "ts"
    args = [
        "-f", "hls",
        "-avoid_negative_ts", shift,
        "-start_number", str(start_number),
        "-hls_time", f"{ladder.segment_seconds:g}",
        "-hls_playlist_type", "vod",
        "-hls_flags", "independent_segments",
        "-hls_segment_type", "fmp4" if fmp4 else "mpegts",
    ]  # fmt: skip
    if fmp4:
        args += ["-hls_fmp4_init_filename", INIT]
        args += ["-hls_segment_options", SEGMENT_OPTIONS]
    args += [
        "-hls_segment_filename", str(outdir / "%v" / f"seg_%05d.{ext}"),
        "-master_pl_name", "ffmpeg-master.m3u8",
        "-var_stream_map", " ".join(streams),
        str(outdir / "%v" / PLAYLIST),
    ]  # fmt: skip
    return args


def audio_command(src: str, outdir: Path, ladder: Ladder) -> list[str]:
    """The whole file's audio, once, as its own HLS rendition (outdir/audio/), as long as the video."""
    a = ladder.audio
    if a is None:
        raise MediaError("the source has no audio to encode")
    d = f"{ladder.duration:.3f}"
    return [
        "-y", "-loglevel", "error", "-vn", "-i", src,
        "-map", "0:a:0", "-c:a", a.codec, "-profile:a", a.profile, "-b:a", f"{a.bitrate_kbps}k",
        "-ac", str(a.channels), "-ar", str(a.sample_rate),
        "-filter:a", f"atrim=end={d},apad=whole_dur={d}",
        "-map_metadata", "-1", "-map_chapters", "-1",
        # make_zero: the AAC encoder's priming puts the first packet at -1024 samples, which a
        # fMP4 `tfdt` cannot hold (it wraps to 2^64 - 1024 and hls.js places the audio ~24 h
        # away); shifted, the audio starts at 0 like the video, 21 ms late (below lip-sync notice)
        *hls_args(ladder, outdir, [f"a:0,name:{AUDIO_NAME}"], shift="make_zero"),
    ]  # fmt: skip
