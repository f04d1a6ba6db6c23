"""Sweeping what uploads leave behind: abandoned signed and multipart uploads, dead temp files.

Each call to the upload-signing endpoint reserves an inbox key and maybe a multipart upload; a
browser that never calls `complete` would leave them forever. A background thread removes those
older than `web.upload_ttl` (S3: AbortMultipartUpload and delete; the bucket's lifecycle rule in
docs/security.md is the backstop). Temp files of a killed server go at start and on every round.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from pathlib import Path

from ebbtide.services import Services
from ebbtide.storage.base import UploadSweeper
from ebbtide.web.periodic import Periodic

log = logging.getLogger(__name__)

STALE_TEMP_S = 600.0  # a temp file untouched this long belongs to no live request


def clean_temp_dir(folder: Path, older_than: float) -> int:
    """Remove files and folders in `folder` last modified before `older_than` (epoch seconds)."""
    removed = 0
    if not folder.is_dir():
        return 0
    for entry in folder.iterdir():
        with contextlib.suppress(FileNotFoundError):
            if entry.lstat().st_mtime >= older_than:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink()
            removed += 1
    return removed


def sweep_once(services: Services, now: float | None = None) -> int:
    from ebbtide.web.gallery import tmp_dir
    from ebbtide.worker.intake import INBOX

    now = time.time() if now is None else now
    removed = clean_temp_dir(tmp_dir(services), now - STALE_TEMP_S)
    store = services.store
    if isinstance(store, UploadSweeper):
        removed += store.sweep_uploads(INBOX, now - services.settings.web.upload_ttl)
    return removed


def clean_at_start(services: Services) -> int:
    """Temp files a killed server left: the web spool folder and the file store's half-writes."""
    now = time.time()
    removed = sweep_once(services, now)
    remove_stale = getattr(services.store, "remove_stale_temp", None)
    if remove_stale is not None:
        removed += int(remove_stale(now - STALE_TEMP_S))
    if removed:
        log.info("leftovers removed at start", extra={"removed": removed})
    return removed


class Sweeper(Periodic):
    """Removes abandoned uploads every quarter of `web.upload_ttl` (1 min to 1 h); the first round
    also removes what a killed server left behind."""

    thread_name = "upload-sweeper"

    def __init__(self, services: Services) -> None:
        super().__init__(min(3600.0, max(60.0, services.settings.web.upload_ttl / 4)))
        self.services = services
        self._first = True

    def tick(self) -> None:
        try:
            clean_at_start(self.services) if self._first else sweep_once(self.services)
        except Exception as e:  # a store outage must not end the thread; next round retries
            log.warning("upload sweep failed", extra={"error": str(e)})
        self._first = False
