"""Real Node BullMQ workers and producer for the foreign-pool tests (scripts in foreign_js/).

The npm packages are installed by `make bullmq` under .cache/node/bullmq5 and bullmq6.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
JS = Path(__file__).parent / "foreign_js"
VERSIONS = {"5": "bullmq5", "6": "bullmq6"}


def bullmq_env(major: str) -> dict[str, str]:
    d = REPO / ".cache" / "node" / VERSIONS[major]
    if not (d / "node_modules" / "bullmq").is_dir() or not shutil.which("node"):
        pytest.fail(f"BullMQ {major}.x is not installed under {d}; run `make bullmq` (needs node and npm)")
    return dict(os.environ, BULLMQ_DIR=str(d))


class NodeWorker:
    """One `worker.js` process; `holding` is the set of jobs it has started and not finished."""

    def __init__(self, major: str, redis_url: str, queue: str, name: str | None, job_ms: int) -> None:
        self.name = name
        self.events: list[dict[str, Any]] = []
        self.holding: set[str] = set()
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(
            ["node", str(JS / "worker.js"), redis_url, queue, name or "-", str(job_ms)],
            env=bullmq_env(major), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self.events.append(ev)
                if ev["event"] == "start":
                    self.holding.add(str(ev["job"]))
                elif ev["event"] == "done":
                    self.holding.discard(str(ev["job"]))

    def wait_for(self, event: str, count: int = 1, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if sum(1 for e in self.events if e["event"] == event) >= count:
                    return
            if self.proc.poll() is not None:
                raise AssertionError(f"worker {self.name} exited ({self.proc.returncode})")
            time.sleep(0.05)
        raise AssertionError(f"worker {self.name}: no {event!r} within {timeout}s")

    def done(self) -> list[str]:
        with self.lock:
            return [str(e["job"]) for e in self.events if e["event"] == "done"]

    def kill(self) -> set[str]:
        """The instance is gone: SIGKILL, as a terminated instance would. Returns the jobs it held."""
        with self.lock:
            held = set(self.holding)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        return held

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def producer(major: str, redis_url: str, queue: str, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        ["node", str(JS / "producer.js"), redis_url, queue, *args],
        env=bullmq_env(major), capture_output=True, text=True, timeout=60, check=False,
    )
    if out.returncode != 0:
        raise AssertionError(f"producer.js failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result
