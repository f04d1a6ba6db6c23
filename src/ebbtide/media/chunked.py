"""Running the chunk commands: one chunk, the audio, and a local stitch (used by the bench and tests).

The worker's handlers call `encode_chunk` / `encode_audio` and upload the folder; `stitch_folder`
joins parts that sit side by side in one local folder, as they sit in the store.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from ebbtide.media.chunks import Chunk, audio_command, chunk_command
from ebbtide.media.command import (
    AUDIO_NAME,
    MASTER,
    PLAYLIST,
    STORYBOARD,
    STORYBOARD_FRAMES,
    EncodeOptions,
    storyboard_command,
    storyboard_join_command,
)
from ebbtide.media.errors import FfmpegFailed
from ebbtide.media.ffmpeg import run_ffmpeg
from ebbtide.media.hls import playlist_version
from ebbtide.media.ladder import Ladder
from ebbtide.media.pace import TimeBudget
from ebbtide.media.progress import Progress, ProgressParser
from ebbtide.media.sandbox import own_cgroup_dir
from ebbtide.media.stitch import (
    Manifest,
    check_joined,
    master_playlist,
    media_playlist,
    read_outputs,
)
from ebbtide.media.validate import _check_starts_with_keyframe

log = logging.getLogger(__name__)


def encode_chunk(
    src: str,
    outdir: Path,
    ladder: Ladder,
    opts: EncodeOptions,
    chunk: Chunk,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    budget: TimeBudget | None = None,
    memory: int | None = None,
) -> tuple[Manifest, str]:
    """Encode one chunk into outdir/<rung>/; returns its manifest and the encoder that did it.

    `budget` (the chunk's length at the pool's speed, `limits.attempt_budget`) and `memory`
    (media.limits.max_memory) bound each ffmpeg run as they bound an unchunked transcode.

    With `opts.storyboard`, the storyboard frames that fall in the chunk are tiled into its own
    sprite (outdir/storyboard.jpg), which stitch joins with the other chunks' (`join_storyboards`).
    NVENC that fails falls back to x264 for this chunk; stitch then emits a new EXT-X-MAP there.
    """
    shutil.rmtree(outdir, ignore_errors=True)
    (outdir / STORYBOARD_FRAMES).mkdir(parents=True)
    length = (chunk.end if chunk.end is not None else ladder.duration) - chunk.start
    parser = ProgressParser(max(0.1, length), on_progress or (lambda p: None))
    what = f"{chunk.describe(ladder.duration)} of {Path(src).name if '://' not in src else 'the source'}"
    try:
        cap = memory if opts.encoder == "libx264" or own_cgroup_dir() else None  # CUDA: cgroup only
        run_ffmpeg(chunk_command(src, outdir, ladder, opts, chunk), on_line=parser.feed, cancel=cancel,
                   what=what, budget=budget, memory=cap)  # fmt: skip
        encoder = opts.encoder
    except FfmpegFailed:
        if opts.encoder == "libx264":
            raise
        log.warning("GPU chunk encode failed; retrying on the CPU", extra={"chunk": chunk.index})
        shutil.rmtree(outdir, ignore_errors=True)
        (outdir / STORYBOARD_FRAMES).mkdir(parents=True)
        cpu = EncodeOptions(preset=opts.preset, scale_flags=opts.scale_flags, progress=opts.progress,
                            storyboard=opts.storyboard)  # fmt: skip
        run_ffmpeg(chunk_command(src, outdir, ladder, cpu, chunk), on_line=parser.feed, cancel=cancel,
                   what=what, budget=budget, memory=memory)  # fmt: skip
        encoder = "libx264"
    names = [r.name for r in ladder.rungs]
    tiles = _tile_storyboard(outdir, cancel)
    manifest = replace(read_outputs(outdir, names, chunk.index), storyboard_frames=tiles)
    for r in manifest.renditions:  # a player switching rungs needs each segment to start clean
        for s in r.segments:
            _check_starts_with_keyframe(outdir / r.name, s.uri, r.init)
    return manifest, encoder


def _tile_storyboard(outdir: Path, cancel: threading.Event | None) -> int:
    """Tile the chunk's storyboard frames into its sprite; returns how many tiles it holds."""
    frames = outdir / STORYBOARD_FRAMES
    try:
        count = len(list(frames.glob("*.jpg")))
        if count:
            run_ffmpeg(storyboard_command(frames, outdir / STORYBOARD, count, quality=2), cancel=cancel,
                       what="the chunk's storyboard", timeout=120)  # fmt: skip
        return count
    finally:
        shutil.rmtree(frames, ignore_errors=True)


def join_storyboards(
    strips: Sequence[tuple[Path, int]], out: Path, cancel: threading.Event | None = None
) -> bool:
    """One storyboard sprite from the chunks' sprites (path, tiles), laid out as the unchunked
    encode lays it out; False when there are fewer than two tiles (the thumbnail is enough)."""
    strips = [(p, n) for p, n in strips if n > 0]
    if sum(n for _, n in strips) < 2:
        return False
    run_ffmpeg(storyboard_join_command(list(strips), out), cancel=cancel, what="the storyboard", timeout=120)
    return out.is_file() and out.stat().st_size > 0


def encode_audio(
    src: str,
    outdir: Path,
    ladder: Ladder,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
    memory: int | None = None,
) -> Manifest:
    """The whole file's audio, bounded like any ffmpeg run (`timeout`: the whole file's budget)."""
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    run_ffmpeg(audio_command(src, outdir, ladder), cancel=cancel, what="audio of the source",
               timeout=timeout, memory=memory)  # fmt: skip
    return read_outputs(outdir, [AUDIO_NAME], -1)


def stitch_folder(
    root: Path, folder: str, ladder: Ladder, parts: Sequence[Manifest], audio: Manifest | None, *, final: bool
) -> Path:
    """Write `root/<folder>/master.m3u8` and one playlist per rung over `parts` (prefixes: from root)."""
    names = [r.name for r in ladder.rungs]
    if final:
        check_joined(parts, names, ladder.duration)
    out = root / folder
    up = "../" * (folder.count("/") + 2)
    version = playlist_version(ladder)
    for name in names:
        (out / name).mkdir(parents=True, exist_ok=True)
        text = media_playlist(parts, name, up, version=version, final=final, vod=final)
        (out / name / PLAYLIST).write_text(text)
    if audio is not None:  # grows with the video: live video and VOD audio stall hls.js
        seconds = None if final else sum(p.rendition(names[0]).duration for p in parts)
        (out / AUDIO_NAME).mkdir(parents=True, exist_ok=True)
        text = media_playlist([audio], AUDIO_NAME, up, version=version, final=final, vod=final, until=seconds)
        (out / AUDIO_NAME / PLAYLIST).write_text(text)
    master, _ = master_playlist(ladder, parts, audio)
    (out / MASTER).write_text(master)
    return out / MASTER
