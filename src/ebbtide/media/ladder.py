"""Ladder planning: a pure function from probe facts and config to the renditions to encode.

Rules (tested one by one in tests/media/test_ladder.py):
- never upscale: only rungs at or below the source's short side; a source between rungs also
  gets its own height (a 540p source → 540p, 480p, 360p); a source smaller than every rung
  gets exactly one rendition at its own size;
- portrait sources scale by width (a rung's "height" is the short side);
- every dimension is even (4:2:0 chroma needs it);
- frame rate kept up to `max_fps`, above it halved until it fits; VFR is resampled to CFR so
  keyframes land on the same instants in every rendition;
- GOP = `gop_seconds` of frames, segments `segment_seconds`;
- bitrates x1.5 above 30 fps; maxrate 1.1x, bufsize 2x;
- one shared AAC-LC stereo 48 kHz audio rendition, or none if the source has no audio.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction

from ebbtide.config.sections import MediaConfig, Rung
from ebbtide.media.errors import MediaError
from ebbtide.media.probe import ProbeResult, fps_fraction

HIGH_FPS_THRESHOLD = 31.0  # 50/60 fps content needs more bits for the same quality
HIGH_FPS_FACTOR = 1.5
MAXRATE_FACTOR = 1.1
BUFSIZE_FACTOR = 2.0


@dataclass(frozen=True)
class RungPlan:
    name: str  # "720p" — the short side
    width: int
    height: int
    bitrate_kbps: int
    maxrate_kbps: int
    bufsize_kbps: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class AudioPlan:
    codec: str = "aac"
    profile: str = "aac_low"
    bitrate_kbps: int = 128
    channels: int = 2
    sample_rate: int = 48000


@dataclass(frozen=True)
class Ladder:
    rungs: tuple[RungPlan, ...]  # largest first
    fps: Fraction  # output frame rate
    resample_fps: bool  # an fps filter is needed (VFR source or rate halved)
    to_8bit: bool  # the source is not yuv420p and must be converted once, before the split
    gop_frames: int
    gop_seconds: float
    segment_seconds: float
    segment_format: str  # "fmp4" | "ts"
    audio: AudioPlan | None
    source_width: int
    source_height: int
    duration: float

    @property
    def top(self) -> RungPlan:
        return self.rungs[0]


def even(x: float) -> int:
    """Nearest even integer ≥ 2."""
    return max(2, 2 * round(x / 2))


def even_floor(x: float) -> int:
    return max(2, int(x) // 2 * 2)


def plan_fps(fps: float, max_fps: float) -> tuple[Fraction, bool]:
    """The output frame rate and whether it differs from the source's (halved until ≤ max_fps)."""
    if fps <= 0:
        return Fraction(30), True
    out = fps_fraction(fps)
    halved = False
    while float(out) > max_fps + 0.01:
        out /= 2
        halved = True
    return out, halved


def _rung_bitrate(short: int, rungs: tuple[Rung, ...]) -> int:
    """Bitrate for a height that is not a configured rung: linear between neighbours, and by
    pixel area below the smallest rung."""
    by_h = sorted(rungs, key=lambda r: r.height)
    if short <= by_h[0].height:
        return max(64, round(by_h[0].bitrate_kbps * (short / by_h[0].height) ** 2))
    for lo, hi in itertools.pairwise(by_h):
        if lo.height <= short <= hi.height:
            f = (short - lo.height) / (hi.height - lo.height)
            return round(lo.bitrate_kbps + f * (hi.bitrate_kbps - lo.bitrate_kbps))
    return by_h[-1].bitrate_kbps


def plan_ladder(probe: ProbeResult, cfg: MediaConfig) -> Ladder:
    if probe.width <= 0 or probe.height <= 0:
        raise MediaError("the source has no frame size", hint="the file may be damaged")
    if not cfg.rungs:
        raise MediaError("media.rungs is empty", hint="configure at least one rung in ebbtide.yaml")
    w, h = probe.width, probe.height
    portrait = h > w
    short, long_ = (w, h) if portrait else (h, w)
    aspect = long_ / short
    fps, halved = plan_fps(probe.fps, cfg.max_fps)
    fast = float(fps) > HIGH_FPS_THRESHOLD

    heights: list[tuple[int, int]] = []  # (short side, bitrate kbps)
    configured = sorted(cfg.rungs, key=lambda r: r.height, reverse=True)
    for r in configured:
        if r.height <= short:
            heights.append((r.height, r.bitrate_kbps))
    top_rung = configured[0].height
    native = even_floor(short)
    if native < top_rung and all(native != hh for hh, _ in heights):
        heights.append((native, _rung_bitrate(native, cfg.rungs)))
    heights.sort(reverse=True)

    rungs: list[RungPlan] = []
    for s, kbps in heights:
        if s == native:
            sw, sh = even_floor(short), even_floor(long_)
        else:
            sw, sh = even(s), even(s * aspect)
        width, height = (sw, sh) if portrait else (sh, sw)
        if fast:
            kbps = round(kbps * HIGH_FPS_FACTOR)
        rungs.append(
            RungPlan(
                name=f"{s}p",
                width=width,
                height=height,
                bitrate_kbps=kbps,
                maxrate_kbps=round(kbps * MAXRATE_FACTOR),
                bufsize_kbps=round(kbps * BUFSIZE_FACTOR),
            )
        )
    gop = max(1, round(cfg.gop_seconds * float(fps)))
    audio = AudioPlan(bitrate_kbps=cfg.audio_bitrate_kbps) if probe.has_audio else None
    return Ladder(
        rungs=tuple(rungs),
        fps=fps,
        resample_fps=halved or probe.vfr,
        to_8bit=probe.pix_fmt not in ("yuv420p", "yuvj420p"),
        gop_frames=gop,
        gop_seconds=cfg.gop_seconds,
        segment_seconds=cfg.segment_seconds,
        segment_format=cfg.segment_format,
        audio=audio,
        source_width=w,
        source_height=h,
        duration=probe.duration,
    )
