"""Media errors: each names what is wrong with the file, so a person can act on it.

Retry rules are declared here by type: a `MediaError` is `Permanent` (the same file fails again),
a cancel, a run the system killed (not our own cap) or a progressing run past its time budget
(`TooSlow`, see pace.py) is `Transient`.
"""

from __future__ import annotations

from ebbtide.errors import Permanent, Transient


class MediaError(Permanent):
    """The input cannot be probed or transcoded (empty, not a video, truncated, over a limit…)."""


class TranscodeCancelled(Transient):
    """The caller set the cancel event; ffmpeg was killed and partial outputs are not valid."""


class FfmpegFailed(MediaError):
    """ffmpeg exited non-zero; the message carries the last lines of its log."""


class OverBudget(MediaError):
    """ffmpeg or the probe went past its own memory cap or time budget: this file needs more than
    `media.limits` allows, and will again."""


class TooSlow(Transient):
    """ffmpeg was still progressing when its time budget ran out: the host ran slower than the budget
    assumed. Another attempt gets a larger budget (`media.limits.max_time_factor`)."""


class KilledBySystem(Transient):
    """ffmpeg was killed by a signal we did not send (the kernel's OOM killer on a busy host)."""
