"""The web's probe: the isolated, capped prober (`media/isolated.py`), at most `web_probes` at once.

Why a semaphore: each probe is a child that may take up to `media.limits.probe_memory`; unbounded
in number, a handful of image bombs uploaded together would take the server's host. Beyond the
limit the upload gets 503 with Retry-After rather than waiting in memory.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ebbtide.config.sections import MediaLimits
from ebbtide.errors import Transient

if TYPE_CHECKING:
    from ebbtide.media.probe import ProbeResult

RETRY_AFTER = 5  # seconds a client waits before trying again when every probe slot is busy

_lock = threading.Lock()
_slots: dict[int, threading.BoundedSemaphore] = {}


class ProbesBusy(Transient):
    """Every probe slot is taken (503 + Retry-After)."""


def _slot(n: int) -> threading.BoundedSemaphore:
    with _lock:
        return _slots.setdefault(n, threading.BoundedSemaphore(n))


def probe_upload(path: Path, limits: MediaLimits) -> ProbeResult:
    """Probe in a capped child if a slot is free within a second; raises MediaError or ProbesBusy."""
    from ebbtide.media.isolated import probe_isolated

    slot = _slot(limits.web_probes)
    if not slot.acquire(timeout=1.0):
        raise ProbesBusy(
            "the server is checking other uploads right now", hint=f"try again in {RETRY_AFTER} s"
        )
    try:
        return probe_isolated(path, limits)
    finally:
        slot.release()
