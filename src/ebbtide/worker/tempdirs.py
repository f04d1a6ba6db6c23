"""Per-attempt temp dirs, and cleaning up after workers that died without doing it themselves.

Layout: <temp_dir or system tmp>/ebbtide-work/<pid>-<worker token>/<job>-<random>/. A SIGKILLed
worker cannot clean up, so every worker removes the dirs of dead pids when it starts and stops.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

_OWNER = re.compile(r"^(\d+)-[0-9a-f]+$")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class TempRoot:
    def __init__(self, temp_dir: str | None, worker_id: str) -> None:
        self.root = self.root_for(temp_dir)
        self.own = self.root / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"

    @staticmethod
    def root_for(temp_dir: str | None) -> Path:
        return Path(temp_dir or tempfile.gettempdir()) / "ebbtide-work"

    def make(self, job_id: str) -> Path:
        self.own.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{job_id[:12]}-", dir=self.own))

    def remove_own(self) -> None:
        shutil.rmtree(self.own, ignore_errors=True)

    def sweep_stale(self) -> int:
        """Remove the dirs of workers whose process is gone; returns how many."""
        if not self.root.is_dir():
            return 0
        removed = 0
        for d in self.root.iterdir():
            m = _OWNER.match(d.name)
            if m and d != self.own and not pid_alive(int(m.group(1))):
                shutil.rmtree(d, ignore_errors=True)
                removed += 1
        if removed:
            log.info("removed temp dirs of dead workers", extra={"count": removed, "root": str(self.root)})
        return removed
