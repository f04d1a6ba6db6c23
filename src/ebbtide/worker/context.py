"""What a handler gets: the job, its attempt, a private work dir, progress and a cancel event."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ebbtide.catalog.records import Attempt, Job
from ebbtide.services import Services
from ebbtide.worker.status import StatusWriter


class Cancelled(Exception):
    """The handler stopped because the attempt was cancelled (stop signal or lost lease)."""


@dataclass
class Progress:
    """Written by the handler's thread, read by the heartbeat thread (floats assign atomically)."""

    fraction: float = 0.0
    speed: float | None = None
    eta: float | None = None


@dataclass
class JobContext:
    services: Services
    job: Job
    attempt: Attempt
    job_dir: Path  # private to this attempt, removed afterwards
    cancel: threading.Event
    status: StatusWriter | None = None  # generic jobs only
    progress_state: Progress = field(default_factory=Progress)
    pool: str | None = None  # the worker's pool: its speed sets the ffmpeg time budget
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("ebbtide.worker.job"))

    @property
    def payload(self) -> dict[str, Any]:
        return self.job.payload

    def progress(self, fraction: float, speed: float | None = None, eta: float | None = None) -> None:
        """Report progress 0..1; the heartbeat thread carries it to the catalog."""
        p = self.progress_state
        p.fraction = max(0.0, min(1.0, float(fraction)))
        p.speed, p.eta = speed, eta
        if self.status is not None:
            self.status.progress(p.fraction)

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("the attempt was cancelled")
