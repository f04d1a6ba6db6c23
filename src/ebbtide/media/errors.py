"""Media errors: each names what is wrong with the file, so a person can act on it."""

from __future__ import annotations

from ebbtide.errors import EbbtideError


class MediaError(EbbtideError):
    """The input cannot be probed or transcoded (empty, not a video, truncated, no video stream…)."""


class TranscodeCancelled(MediaError):
    """The caller set the cancel event; ffmpeg was killed and partial outputs are not valid."""


class FfmpegFailed(MediaError):
    """ffmpeg exited non-zero; the message carries the last lines of its log."""
