"""Helpers for tests/web (a module of its own: `conftest` names clash across test folders).

A real app on embedded defaults (SQLite queue + catalog, file store) in tmp_path, users with real
tokens, ready videos made by the real worker, and live `ebbtide serve` subprocesses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from fastapi.testclient import TestClient

from ebbtide.catalog.records import User
from ebbtide.config import load_settings
from ebbtide.services import Services

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """As tests/conftest.py's free_port (not importable by name: both files are `conftest`)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


EBBTIDE = [sys.executable, "-m", "ebbtide.cli.main"]


@dataclass
class Account:
    user: User
    token: str
    password: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Env:
    services: Services
    client: TestClient
    alice: Account
    bob: Account
    admin: Account

    def upload(self, who: Account, path: Path, title: str = "clip", name: str | None = None) -> Any:
        with open(path, "rb") as fh:
            return self.client.post(
                "/api/gallery/uploads",
                headers=who.headers,
                files={"file": (name or path.name, fh, "video/mp4")},
                data={"title": title},
            )

    def run_worker_once(self) -> None:
        """The real worker runtime, in-process, takes one job to the end."""
        from ebbtide.worker.runtime import Worker

        code = Worker(self.services, pool="local", once=True, idle_exit=3, install_signals=False).run()
        assert code == 0

    def ready_video(self, who: Account, clip: Path, title: str = "ready") -> dict[str, Any]:
        r = self.upload(who, clip, title)
        assert r.status_code == 201, r.text
        self.run_worker_once()
        v = self.client.get(f"/api/gallery/videos/{r.json()['id']}", headers=who.headers).json()
        assert v["state"] == "complete", v
        return dict(v)


def account(services: Services, name: str, admin: bool = False) -> Account:
    pw = f"pw-{name}-secret"
    user = services.catalog.create_user(name, password=pw, is_admin=admin)
    return Account(user, services.catalog.create_token(user.id, label="test"), pw)


def make_settings(data_dir: Path, **over: Any) -> Any:
    base: dict[str, Any] = {"data_dir": str(data_dir), "queue": {"wait": 0.2, "backoff_base": 0.1}}
    base.update(over)
    return load_settings(path=None, env={}, overrides=base)


class LiveServer:
    """`ebbtide serve` as a real uvicorn subprocess on a free port, with its own config file."""

    def __init__(self, root: Path, extra: dict[str, Any] | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.data_dir = root / "data"
        cfg: dict[str, Any] = {
            "data_dir": str(self.data_dir),
            "queue": {"wait": 0.5, "backoff_base": 0.1},
            # one process unless a test asks for more: memory tests measure that process
            "web": {"host": "127.0.0.1", "port": self.port, "workers": 1},
            "fleet": {"interval": 1},
        }
        for k, v in (extra or {}).items():  # one level deep, so extra web keys keep the port
            cfg[k] = {**cfg[k], **v} if isinstance(v, dict) and isinstance(cfg.get(k), dict) else v
        self.config = root / "ebbtide.yaml"
        self.config.write_text(yaml.safe_dump(cfg))
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "serve.log"

    def env(self) -> dict[str, str]:
        e = dict(os.environ)
        e["EBBTIDE_CONFIG"] = str(self.config)
        e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
        return e

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [*EBBTIDE, "-c", str(self.config), *args], env=self.env(), capture_output=True, timeout=180
        )
        assert out.returncode == 0, out.stderr.decode()
        return out.stdout.decode()

    def start(self) -> LiveServer:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [*EBBTIDE, "-c", str(self.config), "serve"], env=self.env(), stdout=log, stderr=log
            )
        deadline = time.monotonic() + 240  # a bound against hangs; a loaded machine boots slowly
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"ebbtide serve exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"ebbtide serve did not answer /health: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_js(page: Any, expression: str, timeout: float = 30_000) -> None:
    """Poll a JS expression through CDP until truthy. `page.evaluate` is exempt from the pages' CSP,
    which forbids the string eval Playwright's `wait_for_function` runs inside the page."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(100)
