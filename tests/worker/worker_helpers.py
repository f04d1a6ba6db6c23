"""Worker test helpers: embedded configs, worker processes via the CLI, in-process worker threads."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ebbtide.services import Services
from ebbtide.worker.runtime import Worker

# Small rungs and 1 s segments keep transcodes of 1-2 s clips well under a second.
FAST_MEDIA: dict[str, Any] = {
    "rungs": [{"height": 240, "bitrate_kbps": 400}, {"height": 144, "bitrate_kbps": 150}],
    "segment_seconds": 1,
    "gop_seconds": 1,
    "threads": 1,
}


def build_config(data_dir: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "data_dir": str(data_dir),
        "media": dict(FAST_MEDIA),
        "queue": {"lease": 3, "wait": 1, "backoff_base": 0.1, "backoff_max": 1},
        "worker": {
            "temp_dir": str(data_dir / "tmp"), "spot_watch": "off", "ecs_protection": "off",
        },
    }
    for name, values in sections.items():
        cfg[name] = {**cfg.get(name, {}), **values}
    return cfg


def spawn_worker(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A real worker process through the CLI; its log goes to a file beside the config."""
    full = dict(os.environ)
    for k in ("EBBTIDE_JOB_ID", "ECS_AGENT_URI"):
        full.pop(k, None)
    full.update(env or {})
    log = open(config.parent / f"worker-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "ebbtide.cli.main", "-c", str(config), "worker", *args],
        stdout=log, stderr=subprocess.STDOUT, env=full,
    )


def worker_logs(config: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(config.parent.glob("worker-*.log")))


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class WorkerThread:
    """An in-process worker on a thread (no signal handlers), for tests that need no SIGKILL."""

    def __init__(self, services: Services, **kwargs: Any) -> None:
        self.worker = Worker(services, install_signals=False, **kwargs)
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.code = self.worker.run()

    def start(self) -> WorkerThread:
        self.thread.start()
        return self

    def stop(self, timeout: float = 15) -> int | None:
        self.worker.request_stop(reason="test over")
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker thread did not stop"
        return self.code


def stop_all(workers: list[WorkerThread], timeout: float = 15) -> list[int | None]:
    """Ask all at once, so their last long polls end together."""
    for w in workers:
        w.worker.request_stop(reason="test over")
    return [w.stop(timeout) for w in workers]
