"""Rendered playlists, kept per (video, playlist, signing window).

Within one signing window every signed URL in a playlist is the same for everyone (`store.sign_window`),
so the rewritten text is too: render it once and hand the same bytes to every viewer. An entry is
used for `fresh_for` seconds at most, so a video that is deleted, unpublished or republished stops
being served from here within that time; a growing (EVENT) playlist is never kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from ebbtide.clock import SYSTEM_CLOCK, Clock

# (media id, playlist path in the HLS set, reached by its own signature, window expiry)
CacheKey = tuple[str, str, bool, int]


@dataclass(frozen=True)
class Rendered:
    body: bytes
    cache_control: str
    published_prefix: str
    made_at: float


class PlaylistCache:
    def __init__(self, fresh_for: float = 5.0, max_entries: int = 4096, clock: Clock = SYSTEM_CLOCK) -> None:
        self.fresh_for = fresh_for
        self.max_entries = max_entries
        self.clock = clock
        self._items: OrderedDict[CacheKey, Rendered] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: CacheKey) -> Rendered | None:
        """The entry if it was made less than `fresh_for` seconds ago."""
        if self.fresh_for <= 0:
            return None
        with self._lock:
            hit = self._items.get(key)
        if hit is None or self.clock.now() - hit.made_at >= self.fresh_for:
            return None
        return hit

    def put(self, key: CacheKey, rendered: Rendered) -> None:
        if self.fresh_for <= 0:
            return
        with self._lock:
            self._items[key] = rendered
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
