"""The status object of a generic job, `jobs/<job_id>/status.json`, that a front end polls.

The same idea as seed 003's S3 status files: a static object anyone with a signed URL can read,
so a browser never needs the catalog. Progress writes are throttled; state changes always write.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from ebbtide.clock import Clock
from ebbtide.storage.base import ObjectStore

log = logging.getLogger(__name__)

PROGRESS_EVERY = 2.0  # seconds between progress writes


def job_prefix(job_id: str) -> str:
    return f"jobs/{job_id}/"


def status_key(job_id: str) -> str:
    return f"jobs/{job_id}/status.json"


def input_prefix(job_id: str) -> str:
    return f"jobs/{job_id}/input/"


def output_prefix(job_id: str) -> str:
    return f"jobs/{job_id}/output/"


class StatusWriter:
    """Keeps one job's status document and writes it to the store."""

    def __init__(self, store: ObjectStore, clock: Clock, job_id: str, kind: str) -> None:
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._last_write = 0.0
        self.doc: dict[str, Any] = {
            "job_id": job_id,
            "kind": kind,
            "state": "queued",
            "progress": 0.0,
            "attempt": 0,
            "started": None,
            "finished": None,
            "error": None,
            "outputs": [],
            "result": None,
            "updated": clock.now(),
        }

    def queued(self) -> None:
        self._write(force=True)

    def started(self, attempt: int) -> None:
        self.doc.update(state="running", attempt=attempt, started=self._clock.now(), error=None)
        self._write(force=True)

    def progress(self, fraction: float) -> None:
        self.doc["progress"] = round(max(0.0, min(1.0, fraction)), 4)
        self._write(force=False)

    def finished(
        self,
        state: str,
        error: str | None = None,
        outputs: list[str] | None = None,
        result: Any = None,
    ) -> None:
        self.doc.update(state=state, error=error, finished=self._clock.now())
        if state == "succeeded":
            self.doc["progress"] = 1.0
        if outputs is not None:
            self.doc["outputs"] = outputs
        if result is not None:
            self.doc["result"] = result
        self._write(force=True)

    def retrying(self, error: str) -> None:
        self.doc.update(state="queued", error=error)
        self._write(force=True)

    def _write(self, force: bool) -> None:
        with self._lock:
            now = self._clock.monotonic()
            if not force and now - self._last_write < PROGRESS_EVERY:
                return
            self._last_write = now
            self.doc["updated"] = self._clock.now()
            data = json.dumps(self.doc, default=str).encode()
        try:
            self._store.put_bytes(status_key(str(self.doc["job_id"])), data, "application/json")
        except Exception as e:  # a status write must never fail the job
            log.warning("status write failed", extra={"job_id": self.doc["job_id"], "error": str(e)})
