"""One outage scenario, shared by the fault tests and bench/soak.py.

A real fleet on this machine: an `ebbtide scaler` process (its reconciler re-sends stranded jobs),
two `ebbtide worker` processes of a static pool, and the web app in-process (TestClient). Jobs go
in through the intake and the web's upload API before and during the outage; the test then stops
and starts the private server and checks that every accepted job finishes exactly once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient

from ebbtide.catalog.states import JobState
from ebbtide.config import load_settings
from ebbtide.errors import BackendUnavailable
from ebbtide.services import Services, open_services
from ebbtide.web.app import create_app
from ebbtide.worker.intake import submit_job

FAST_MEDIA: dict[str, Any] = {
    "rungs": [{"height": 144, "bitrate_kbps": 150}],
    "segment_seconds": 1,
    "gop_seconds": 1,
    "threads": 1,
}
EBBTIDE = [sys.executable, "-m", "ebbtide.cli.main"]


def write_config(data_dir: Path, queue: dict[str, Any], catalog_url: str | None) -> Path:
    cfg: dict[str, Any] = {
        "data_dir": str(data_dir),
        "media": FAST_MEDIA,
        "queue": {"lease": 4, "wait": 1, "backoff_base": 0.2, "backoff_max": 1, "resend_after": 2, **queue},
        "worker": {"lease": 4, "temp_dir": str(data_dir / "tmp"), "spot_watch": "off",
                   "ecs_protection": "off", "outage_budget": 120},
        "fleet": {"interval": 1, "pools": [{"name": "edge", "provider": "static", "max": 2}]},
    }
    if catalog_url:
        cfg["catalog"] = {"url": catalog_url}
    path = data_dir / "ebbtide.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@dataclass
class Fleet:
    config: Path
    services: Services
    client: TestClient
    headers: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    jobs: list[str] = field(default_factory=list)  # accepted: each must end succeeded, once
    refused: int = 0  # submits answered "unavailable": nothing was accepted, nothing to finish
    down_parts: set[str] = field(default_factory=set)  # what /health named while it said 503

    @classmethod
    def start(cls, config: Path, workers: int = 2) -> Fleet:
        settings = load_settings(config, env={})
        services = open_services(settings)
        user = services.catalog.create_user("faults")
        token = services.catalog.create_token(user.id, label="faults")
        client = TestClient(create_app(open_services(settings)), base_url="http://127.0.0.1:8000")
        fleet = cls(config, services, client, {"Authorization": f"Bearer {token}"})
        fleet._spawn("scaler", "scaler")
        for i in range(workers):
            fleet._spawn(f"worker-{i}", "worker", "--pool", "edge")
        return fleet

    def _spawn(self, name: str, *args: str) -> None:
        env = {**os.environ, "EBBTIDE_WORKER_ID": f"fault-{name}-{os.getpid()}"}
        log = open(self.config.parent / f"{name}.log", "wb")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(
            [*EBBTIDE, "-c", str(self.config), *args], stdout=log, stderr=subprocess.STDOUT, env=env
        )

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
                         for p in sorted(self.config.parent.glob("*.log")))

    def submit_one(self, seconds: float = 0.5) -> str:
        """One job; BackendUnavailable propagates (the caller decides whether to retry)."""
        job_id = submit_job(self.services, "command", {"command": f"sleep {seconds}"}).id
        self.jobs.append(job_id)
        return job_id

    def submit(self, n: int, seconds: float = 0.5) -> None:
        for _ in range(n):
            try:
                self.jobs.append(submit_job(self.services, "command", {"command": f"sleep {seconds}"}).id)
            except BackendUnavailable:
                self.refused += 1

    def upload(self, clip: Path) -> int:
        with open(clip, "rb") as fh:
            r = self.client.post("/api/gallery/uploads", headers=self.headers,
                                 files={"file": ("clip.mp4", fh, "video/mp4")}, data={"title": "fault"})
        if r.status_code == 201:
            media = self.services.catalog.get_media(r.json()["id"])
            assert media.job_id
            self.jobs.append(media.job_id)
        else:
            assert r.status_code == 503 and r.json()["error"], r.text  # a clear "try again", no 500
            self.refused += 1
        return r.status_code

    def health(self) -> int:
        r = self.client.get("/health")
        if r.status_code == 503:
            self.down_parts.update(r.json()["failed"])
        return r.status_code

    def states(self) -> dict[str, JobState]:
        return {j: self.services.catalog.get_job(j).state for j in self.jobs}

    def done(self) -> bool:
        return all(s == JobState.SUCCEEDED for s in self.states().values())

    def wins(self, job_id: str) -> int:
        return sum(1 for a in self.services.catalog.attempts(job_id) if a.outcome == "succeeded")

    def close(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.client.close()
        self.services.close()


def poll(predicate: Callable[[], Any], timeout: float, every: float = 0.2) -> float | None:
    """Seconds until `predicate()` held (swallowing backend errors meanwhile), or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if predicate():
                return time.monotonic() - t0
        except BackendUnavailable:
            pass
        time.sleep(every)
    return None


@dataclass
class Report:
    health_down: bool
    health_back_s: float | None
    first_done_s: float | None  # seconds after the server returned until a job finished
    all_done_s: float | None


def outage(fleet: Fleet, stop: Callable[[], None], start: Callable[[], None], clip: Path,
           seconds: float = 8.0, finish_within: float = 60.0) -> Report:
    """Stop the server mid-run, submit during the outage, start it again; measure recovery."""
    fleet.submit(6)
    assert fleet.upload(clip) == 201
    running = poll(lambda: JobState.RUNNING in fleet.states().values(), 90)  # workers booting
    assert running is not None, "nothing started before the outage\n" + fleet.logs()
    stop()
    t0 = time.monotonic()
    health_down = poll(lambda: fleet.health() == 503, seconds) is not None
    fleet.submit(2)
    fleet.upload(clip)
    time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
    done_before = sum(1 for s in fleet.states().values() if s == JobState.SUCCEEDED) \
        if _reachable(fleet) else None
    start()
    health_back = poll(lambda: fleet.health() == 200, 30)
    before = done_before if done_before is not None else 0
    first = poll(lambda: sum(1 for s in fleet.states().values() if s == JobState.SUCCEEDED) > before
                 or fleet.done(), finish_within)
    all_done = poll(fleet.done, finish_within)
    return Report(health_down, health_back, first, all_done)


def _reachable(fleet: Fleet) -> bool:
    try:
        fleet.states()
    except BackendUnavailable:
        return False
    return True
