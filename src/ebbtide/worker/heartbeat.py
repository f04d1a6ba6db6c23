"""The heartbeat: its own thread, so a handler busy in ffmpeg or a blocking call never stops it.

Every tick it extends the current lease (unless disabled), carries the handler's progress to the
catalog and upserts the worker record, whose `drain` flag it hands back to the runtime. A lease
that cannot be extended was lost to another worker: the tick cancels the handler.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ebbtide.queue.base import Delivery
from ebbtide.worker.context import Progress

log = logging.getLogger(__name__)


@dataclass
class CurrentJob:
    """The attempt in hand, shared by the runtime, the handler thread and the heartbeat."""

    job_id: str
    attempt_id: str
    media_id: str | None
    delivery: Delivery | None  # None when single-run mode runs a job straight from the catalog
    progress: Progress = field(default_factory=Progress)
    cancel: threading.Event = field(default_factory=threading.Event)
    lost: threading.Event = field(default_factory=threading.Event)
    forgotten: threading.Event = field(default_factory=threading.Event)  # the queue lost our lease
    withdrawn: threading.Event = field(default_factory=threading.Event)  # deleted / finished elsewhere


class Heartbeat:
    """Calls `tick()` every `interval` s on a daemon thread; `poke()` ticks at once."""

    def __init__(self, interval: float, tick: Callable[[], None], name: str = "ebbtide-heartbeat") -> None:
        self.interval = max(0.05, interval)
        self._tick = tick
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception:  # a failed beat must not kill the thread; the next one retries
                log.exception("heartbeat tick failed")
            self._wake.wait(self.interval)
            self._wake.clear()
