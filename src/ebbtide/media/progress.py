"""Parsing ffmpeg's `-progress` key=value stream into (fraction, speed, eta) updates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    fraction: float  # 0..1 of the source duration
    speed: float | None  # x realtime; None until ffmpeg reports one
    eta: float | None  # seconds left at the current speed


def _parse_speed(value: str) -> float | None:
    v = value.strip().rstrip("x").strip()
    try:
        s = float(v)
    except ValueError:  # "N/A" at the start
        return None
    return s if s > 0 else None


def _parse_out_time(block: dict[str, str]) -> float | None:
    for key in ("out_time_us", "out_time_ms"):  # both are microseconds in ffmpeg (historical quirk)
        raw = block.get(key)
        if raw and raw.strip().lstrip("-").isdigit():
            return max(0, int(raw)) / 1_000_000
    return None


def progress_from_block(block: dict[str, str], duration: float) -> Progress:
    """One progress report from a key=value block ending with `progress=continue|end`."""
    if block.get("progress") == "end":
        return Progress(1.0, _parse_speed(block.get("speed", "")), 0.0)
    t = _parse_out_time(block) or 0.0
    fraction = min(1.0, max(0.0, t / duration)) if duration > 0 else 0.0
    speed = _parse_speed(block.get("speed", ""))
    eta = (duration - t) / speed if speed and duration > t else (0.0 if fraction >= 1 else None)
    return Progress(round(fraction, 4), speed, None if eta is None else round(eta, 1))


class ProgressParser:
    """Feed it ffmpeg's stdout lines; it calls `on_progress` once per completed block.

    Fractions never go backwards (ffmpeg's out_time can dip when outputs flush unevenly).
    """

    def __init__(self, duration: float, on_progress: Callable[[Progress], None]) -> None:
        self.duration = duration
        self.on_progress = on_progress
        self._block: dict[str, str] = {}
        self._best = 0.0
        self.last: Progress | None = None

    def feed(self, line: str) -> None:
        key, sep, value = line.strip().partition("=")
        if not sep:
            return
        self._block[key.strip()] = value.strip()
        if key.strip() != "progress":
            return
        p = progress_from_block(self._block, self.duration)
        self._block = {}
        if p.fraction < self._best:
            p = Progress(self._best, p.speed, p.eta)
        self._best = p.fraction
        self.last = p
        self.on_progress(p)
