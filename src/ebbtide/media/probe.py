"""Probe an input with PyAV: what the ladder planner needs, and a clear error when it is not a video."""

from __future__ import annotations

import contextlib
import itertools
import logging
import statistics
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO

import av

from ebbtide.config.sections import MediaLimits
from ebbtide.media import limits as lim
from ebbtide.media.containers import HINT, UnsupportedContainer, container_of, demuxer_options, sniff
from ebbtide.media.errors import MediaError

log = logging.getLogger(__name__)

_VFR_SAMPLE = 300  # packets examined for frame-rate regularity
_HINT_BAD = "upload a video file (mp4, mov, mkv, webm…)"


@dataclass(frozen=True)
class ProbeResult:
    duration: float  # seconds
    width: int  # as displayed, i.e. after rotation metadata
    height: int
    rotation: int  # degrees of display rotation, 0/90/180/270
    fps: float
    vfr: bool
    pix_fmt: str
    bit_depth: int
    has_audio: bool
    bitrate: int  # bits/s of the whole file, 0 if unknown
    video_codec: str
    audio_codec: str | None = None
    audio_channels: int = 0
    audio_sample_rate: int = 0
    size_bytes: int = 0

    @property
    def portrait(self) -> bool:
        return self.height > self.width


def probe(path: Path | str, limits: MediaLimits | None = None) -> ProbeResult:
    """Read stream facts from `path`; raise MediaError naming the problem if it is not a usable video
    or asks for more than `limits` (the defaults when None).

    The demuxer is forced from the allowlist (`containers.py`) and kept on this one file; header
    facts are checked against the limits before a single frame is decoded.
    """
    path = Path(path)
    limits = limits or MediaLimits()
    if not path.is_file():
        raise MediaError(f"{path} does not exist or is not a file", hint="check the path")
    size = path.stat().st_size
    if size == 0:
        raise MediaError(
            f"{path.name} is empty (0 bytes)", hint="the upload may have failed; upload it again"
        )
    lim.check_size(size, limits)
    fmt = container_of(path)
    try:
        container = av.open(
            str(path), format=fmt, metadata_errors="ignore",
            container_options=demuxer_options(fmt), options={"max_pixels": str(limits.max_pixels)},
        )  # fmt: skip
    except av.error.FFmpegError as e:
        raise _open_error(path, fmt, e) from None
    with container:
        return _probe_open(path, size, container, limits)


def probe_stream(stream: IO[bytes], name: str, size: int, limits: MediaLimits | None = None) -> ProbeResult:
    """Probe a seekable file-like object (a source read in place): only what the demuxer asks is read.

    The same allowlist and limits as `probe`: the demuxer is sniffed from the first bytes and forced.
    """
    limits = limits or MediaLimits()
    if size == 0:
        raise MediaError(f"{name} is empty (0 bytes)", hint="the object holds no data")
    lim.check_size(size, limits)
    head = stream.read(1024)
    stream.seek(0)
    fmt = sniff(head)
    if fmt is None:
        raise UnsupportedContainer(f"{name} is not a video file in a container ebbtide accepts", hint=HINT)
    try:
        container = av.open(
            stream, mode="r", format=fmt, metadata_errors="ignore",
            options={"max_pixels": str(limits.max_pixels)},
        )  # fmt: skip
    except av.error.FFmpegError as e:
        raise _open_error(Path(name), fmt, e) from None
    with container:
        return _probe_open(Path(name), size, container, limits)


def _reason(e: av.error.FFmpegError) -> str:
    """libav's reason without the file name it appends (error texts never carry paths)."""
    return str(e.strerror or "unreadable data")


def _open_error(path: Path, fmt: str, e: av.error.FFmpegError) -> MediaError:
    if fmt == "mov":
        return MediaError(
            f"{path.name} is a truncated or damaged MP4/MOV file ({_reason(e)})",
            hint="the upload may have been cut short; upload the complete file again",
        )
    return MediaError(f"{path.name} is not a video file ffmpeg can read ({_reason(e)})", hint=_HINT_BAD)


def _probe_open(
    path: Path, size: int, container: av.container.InputContainer, limits: MediaLimits
) -> ProbeResult:
    lim.check_streams(len(container.streams), limits)
    if not container.streams.video:
        kinds: list[str] = sorted({str(s.type) for s in container.streams}) or ["nothing"]
        raise MediaError(
            f"{path.name} has no video stream (it contains {', '.join(kinds)})",
            hint="only video files can be transcoded; audio-only files are not supported",
        )
    vs = container.streams.video[0]
    cc = vs.codec_context
    a_streams = container.streams.audio
    w, h = int(cc.width), int(cc.height)
    if w <= 0 or h <= 0:
        raise MediaError(f"{path.name}: the video stream has no frame size", hint=_HINT_BAD)
    lim.check_frame(w, h, limits)
    duration = _duration(container, vs)
    if duration <= 0:
        raise MediaError(f"{path.name} has no measurable duration", hint=_HINT_BAD)
    lim.check_duration(duration, limits)
    lim.check_fps(float(vs.average_rate or 0), limits)
    _check_not_truncated(path, size, vs)
    _check_timestamps(container, vs, limits)
    rotation = _first_frame_rotation(path, container, vs, limits)
    if rotation in (90, 270):
        w, h = h, w
    vfr = _is_vfr(container, vs)
    fps = _fps(vs, vfr)
    pix_fmt = cc.pix_fmt or "unknown"
    audio = a_streams[0] if a_streams else None
    return ProbeResult(
        duration=duration,
        width=w,
        height=h,
        rotation=rotation,
        fps=round(fps, 3),
        vfr=vfr,
        pix_fmt=pix_fmt,
        bit_depth=_bit_depth(pix_fmt),
        has_audio=audio is not None,
        bitrate=int(container.bit_rate or 0),
        video_codec=cc.name,
        audio_codec=audio.codec_context.name if audio else None,
        audio_channels=int(audio.codec_context.channels or 0) if audio else 0,
        audio_sample_rate=int(audio.codec_context.sample_rate or 0) if audio else 0,
        size_bytes=size,
    )


def _duration(container: av.container.InputContainer, vs: av.VideoStream) -> float:
    if vs.duration and vs.time_base:
        return float(vs.duration * vs.time_base)
    if container.duration:
        return container.duration / 1_000_000
    return 0.0


def _fps(vs: av.VideoStream, vfr: bool) -> float:
    """CFR: the average rate. VFR: the stream's base rate (its finest regular step), which is
    what the output is resampled to, so dropped frames are filled rather than motion lost."""
    avg = float(vs.average_rate) if vs.average_rate else 0.0
    base = float(vs.base_rate or vs.guessed_rate or 0)
    if vfr and 0 < base <= 240:
        return base
    return avg or base


def _check_not_truncated(path: Path, size: int, vs: av.VideoStream) -> None:
    """An index that points past the end of the file means the tail is missing (faststart MP4)."""
    entries = vs.index_entries
    n = len(entries) if entries is not None else 0
    if n == 0:
        return
    last = entries[n - 1]
    if last.pos >= 0 and last.pos + last.size > size:
        missing = last.pos + last.size - size
        raise MediaError(
            f"{path.name} is truncated: its index expects {missing} more bytes than the file has",
            hint="the upload may have been cut short; upload the complete file again",
        )


def _check_timestamps(
    container: av.container.InputContainer, vs: av.VideoStream, limits: MediaLimits
) -> None:
    """Every frame's timestamp, without decoding: the longest jump and the real end must be in limits.

    A file can declare a short duration and hold frames hours apart (or the other way round); the
    ladder would fill such a gap with copies. MP4's full sample index is read without touching the
    data; other containers are demuxed (packets only, no decode), at most max_duration x max_fps.
    """
    tb = float(vs.time_base or 0)
    if tb <= 0:
        return
    entries = vs.index_entries
    n = len(entries) if entries is not None else 0
    stamps: list[int]
    if n > 2 and vs.frames and n >= int(vs.frames):
        stamps = [entries[i].timestamp for i in range(n)]
    else:
        cap = int(limits.max_duration * limits.max_fps) + 16
        stamps = []
        try:
            for pkt in container.demux(vs):
                ts = pkt.dts if pkt.dts is not None else pkt.pts
                if ts is not None:
                    stamps.append(int(ts))
                if len(stamps) > cap:
                    break
        except av.error.FFmpegError:
            pass  # a damaged tail: the decode check and ffmpeg report it
        finally:
            with contextlib.suppress(av.error.FFmpegError):
                container.seek(0)
    if len(stamps) < 2:
        return
    gap = max((b - a for a, b in itertools.pairwise(stamps)), default=0) * tb
    lim.check_gap(gap, limits)
    lim.check_duration((max(stamps) - min(stamps)) * tb, limits)


def _first_frame_rotation(
    path: Path, container: av.container.InputContainer, vs: av.VideoStream, limits: MediaLimits
) -> int:
    """Decode one frame: proves the stream decodes, and PyAV exposes the display matrix only per frame.

    Its real size is checked too: a PNG or MJPEG frame may be far larger than the header says.
    """
    try:
        for frame in container.decode(vs):
            lim.check_frame(int(frame.width), int(frame.height), limits)
            rot = round(getattr(frame, "rotation", 0) or 0) % 360
            return (rot // 90) * 90 % 360
    except av.error.FFmpegError as e:
        raise MediaError(
            f"{path.name}: the video stream cannot be decoded ({_reason(e)})", hint=_HINT_BAD
        ) from None
    finally:
        with contextlib.suppress(av.error.FFmpegError):
            container.seek(0)
    raise MediaError(f"{path.name}: the video stream holds no frames", hint=_HINT_BAD)


def _is_vfr(container: av.container.InputContainer, vs: av.VideoStream) -> bool:
    """Variable frame rate: consecutive frame timestamps differ by more than 10 % of the median step."""
    stamps: list[int] = []
    entries = vs.index_entries
    n = len(entries) if entries is not None else 0
    if n > 2:
        stamps = [entries[i].timestamp for i in range(min(n, _VFR_SAMPLE))]
    else:
        try:
            for pkt in container.demux(vs):
                if pkt.dts is not None:
                    stamps.append(int(pkt.dts))
                if len(stamps) >= _VFR_SAMPLE:
                    break
        except av.error.FFmpegError:
            return False
    steps = sorted(b - a for a, b in itertools.pairwise(stamps) if b > a)
    if len(steps) < 3:
        return False
    med = statistics.median(steps)
    # Ignore the single largest step: a final short frame is common in CFR files.
    return any(abs(s - med) > 0.1 * med for s in steps[:-1]) if med > 0 else False


def _bit_depth(pix_fmt: str) -> int:
    try:
        fmt = av.VideoFormat(pix_fmt)
        return int(max(c.bits for c in fmt.components))
    except (ValueError, av.error.FFmpegError, TypeError):
        return 8


def fps_fraction(fps: float) -> Fraction:
    """A frame rate as a small fraction (29.97 → 30000/1001) for ffmpeg's `fps=` filter."""
    for num, den in ((24000, 1001), (30000, 1001), (60000, 1001)):
        if abs(fps - num / den) < 0.005:
            return Fraction(num, den)
    return Fraction(fps).limit_denominator(1001)
