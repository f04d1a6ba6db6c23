"""transcode(): probe → plan → one ffmpeg for the whole ladder → master playlist → validate."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ebbtide.catalog.records import Rendition
from ebbtide.config.sections import MediaConfig
from ebbtide.media.command import (
    AUDIO_NAME,
    MASTER,
    STORYBOARD,
    STORYBOARD_FRAMES,
    THUMBNAIL,
    EncodeOptions,
    build_command,
    split_threads,
    storyboard_command,
    thumbnail_command,
)
from ebbtide.media.containers import container_of
from ebbtide.media.errors import FfmpegFailed, MediaError, TranscodeCancelled
from ebbtide.media.ffmpeg import ffmpeg_path, nvenc_works, run_ffmpeg
from ebbtide.media.hls import write_master
from ebbtide.media.isolated import probe_isolated
from ebbtide.media.ladder import Ladder, plan_ladder
from ebbtide.media.limits import attempt_budget, time_budget
from ebbtide.media.pace import TimeBudget
from ebbtide.media.probe import ProbeResult
from ebbtide.media.progress import Progress, ProgressParser
from ebbtide.media.sandbox import own_cgroup_dir
from ebbtide.media.validate import validate_hls

log = logging.getLogger(__name__)

__all__ = ["Progress", "TranscodeCancelled", "TranscodeResult", "choose_encoder", "transcode"]


@dataclass(frozen=True)
class TranscodeResult:
    master: str  # relative to outdir: "master.m3u8"
    renditions: list[Rendition]
    thumbnail: str
    storyboard: str | None
    duration: float
    probe: ProbeResult
    encoder: str = "libx264"
    wall_seconds: float = 0.0
    ladder: Ladder | None = field(default=None, repr=False)


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def choose_encoder(setting: str, gpu_works: Callable[[], bool] | None = None) -> str:
    """`auto` and `h264_nvenc` use NVENC only if it really encodes here; otherwise libx264."""
    if setting == "libx264":
        return "libx264"
    works = (gpu_works or (lambda: nvenc_works(ffmpeg_path())))()
    if works:
        return "h264_nvenc"
    if setting == "h264_nvenc":
        log.warning(
            "h264_nvenc requested but it does not work here; using libx264", extra={"encoder": setting}
        )
    return "libx264"


def encode_options(
    cfg: MediaConfig, ladder: Ladder, encoder: str, input_format: str = "mov"
) -> EncodeOptions:
    cores = cfg.threads or cpu_count()
    return EncodeOptions(
        encoder=encoder,
        preset=cfg.preset,
        threads=split_threads(ladder.rungs, cores) if encoder == "libx264" else None,
        input_format=input_format,
        max_pixels=cfg.limits.max_pixels,
    )


@dataclass(frozen=True)
class _Bounds:
    """One ffmpeg run's caps: memory (media.limits.max_memory) and wall seconds."""

    memory: int
    seconds: float  # thumbnail and storyboard runs (no progress stream)
    encode: TimeBudget  # the encode's, judged on its progress when overrun


def _clear_outputs(outdir: Path, ladder: Ladder) -> None:
    """Remove what an earlier attempt may have left, so stale segments never mix with new ones."""
    for name in [r.name for r in ladder.rungs] + [AUDIO_NAME, STORYBOARD_FRAMES]:
        shutil.rmtree(outdir / name, ignore_errors=True)
    for name in (MASTER, THUMBNAIL, STORYBOARD):
        (outdir / name).unlink(missing_ok=True)


def transcode(
    src: Path,
    outdir: Path,
    cfg: MediaConfig,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    speed: float = 1.0,
    attempt: int = 1,
) -> TranscodeResult:
    """Encode `src` into an HLS ladder in `outdir`; raises MediaError (TranscodeCancelled on cancel).

    `speed` is the pool's media seconds per wall second: with the duration it sets each ffmpeg
    run's time budget (media.limits.time_factor, at least time_floor); the encode's budget grows
    with `attempt` (the queue's receive count) while a slow host keeps it progressing (pace.py).
    """
    started = time.monotonic()
    src, outdir = Path(src), Path(outdir)
    fmt = container_of(src)
    info = probe_isolated(src, cfg.limits)
    ladder = plan_ladder(info, cfg)
    budget = attempt_budget(info.duration, speed, cfg.limits, attempt)
    bounds = _Bounds(cfg.limits.max_memory, time_budget(info.duration, speed, cfg.limits), budget)
    encoder = choose_encoder(cfg.encoder)
    outdir.mkdir(parents=True, exist_ok=True)
    parser = ProgressParser(info.duration, on_progress or (lambda p: None))
    ctx = {"src": src.name, "rungs": [r.name for r in ladder.rungs], "encoder": encoder}
    log.info("transcode start", extra=ctx)
    try:
        _encode(src, outdir, ladder, encode_options(cfg, ladder, encoder, fmt), parser, cancel, bounds)
    except FfmpegFailed as e:
        if encoder == "libx264":
            raise
        log.warning("GPU encode failed; retrying on the CPU", extra={**ctx, "error": e.message})
        encoder = "libx264"
        _encode(src, outdir, ladder, encode_options(cfg, ladder, encoder, fmt), parser, cancel, bounds)
    _thumbnail(src, outdir, ladder, cancel, fmt, cfg.limits.max_pixels, bounds)
    has_sb = _storyboard(outdir, cancel, bounds)
    renditions = write_master(outdir, ladder)
    validate_hls(outdir, info.duration)
    wall = time.monotonic() - started
    if on_progress is not None:
        last = parser.last
        on_progress(Progress(1.0, last.speed if last else None, 0.0))
    log.info("transcode done", extra={**ctx, "encoder": encoder, "wall_s": round(wall, 2)})
    return TranscodeResult(
        master=MASTER,
        renditions=renditions,
        thumbnail=THUMBNAIL,
        storyboard=STORYBOARD if has_sb else None,
        duration=info.duration,
        probe=info,
        encoder=encoder,
        wall_seconds=wall,
        ladder=ladder,
    )


def _encode(
    src: Path,
    outdir: Path,
    ladder: Ladder,
    opts: EncodeOptions,
    parser: ProgressParser,
    cancel: threading.Event | None,
    bounds: _Bounds,
) -> None:
    _clear_outputs(outdir, ladder)
    (outdir / STORYBOARD_FRAMES).mkdir(parents=True, exist_ok=True)
    args = build_command(src, outdir, ladder, opts)
    # CUDA maps tens of GB of address space: RLIMIT_AS would break NVENC, so a GPU encode is
    # capped only by a cgroup (sandbox.make_cgroup) — the CPU fallback is capped either way.
    memory = bounds.memory if opts.encoder == "libx264" or own_cgroup_dir() else None
    run_ffmpeg(args, on_line=parser.feed, cancel=cancel, what="the transcode",
               budget=bounds.encode, memory=memory)  # fmt: skip


def _thumbnail(
    src: Path,
    outdir: Path,
    ladder: Ladder,
    cancel: threading.Event | None,
    fmt: str,
    max_pixels: int,
    bounds: _Bounds,
) -> None:
    out = outdir / THUMBNAIL
    for from_start in (False, True):  # 10 % in, else the first frame (very short videos)
        out.unlink(missing_ok=True)
        cmd = thumbnail_command(
            src, out, ladder, from_start=from_start, input_format=fmt, max_pixels=max_pixels
        )
        run_ffmpeg(cmd, cancel=cancel, what="the thumbnail", timeout=min(120, bounds.seconds),
                   memory=bounds.memory)  # fmt: skip
        if out.is_file() and out.stat().st_size > 0:
            return
    if not out.is_file() or out.stat().st_size == 0:
        raise MediaError(
            f"{src.name}: no thumbnail was produced", hint="the video may hold no decodable frames"
        )


def _storyboard(outdir: Path, cancel: threading.Event | None, bounds: _Bounds) -> bool:
    """Tile the frames the encode wrote; a single frame makes no storyboard (it is the thumbnail)."""
    frames_dir = outdir / STORYBOARD_FRAMES
    try:
        count = len(list(frames_dir.glob("*.jpg")))
        if count < 2:
            return False
        run_ffmpeg(storyboard_command(frames_dir, outdir / STORYBOARD, count), cancel=cancel,
                   what="storyboard", timeout=min(120, bounds.seconds), memory=bounds.memory)  # fmt: skip
        return (outdir / STORYBOARD).is_file()
    finally:
        shutil.rmtree(frames_dir, ignore_errors=True)
