"""`ebbtide up --demo`, the command `make up` runs: web app + controller + local workers.

Real processes end to end: the `up` process serves the web app and runs the controller, which
starts real `ebbtide worker` processes that transcode the generated demo clip with ffmpeg.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import yaml
from fleet_env import wait_for, write_config

from ebbtide.catalog.states import MediaState
from ebbtide.services import open_services


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_up_demo_serves_the_app_transcodes_the_demo_and_returns_to_zero(tmp_path: Path) -> None:
    port = _free_port()
    path, _ = write_config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["web"] = {"host": "127.0.0.1", "port": port}
    path.write_text(yaml.safe_dump(raw))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBBTIDE_")}
    env["EBBTIDE_CONFIG"] = str(path)
    out = tmp_path / "up.log"
    with open(out, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ebbtide.cli.main", "up", "--demo"], env=env,
                                stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
        services = None
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(lambda: _ok(base + "/health"), 60, "the web app's /health")
            from ebbtide.config import load_settings

            services = open_services(load_settings(path, env={}))
            cat = services.catalog
            media = wait_for(lambda: cat.list_media(), 60, "the demo clip to be submitted")
            assert media[0].title == "ebbtide demo"

            def complete() -> bool:
                m = cat.get_media(media[0].id)
                assert m.state != MediaState.FAILED, m.error
                return m.state == MediaState.COMPLETE

            wait_for(complete, 180, "the demo clip to be transcoded", step=0.5)
            assert cat.list_workers(include_gone=True), "a local worker did the job"
            wait_for(lambda: cat.list_workers(pool="local") == [], 60, "the fleet back at zero", step=0.5)
            text = out.read_text()
            assert f"web app: http://127.0.0.1:{port}" in text
            # stdout is a log file here: the password goes to a 0600 file, never into the log
            secret = services.settings.data_path / "first-password.txt"
            assert "login: admin;" in text and str(secret) in text
            assert secret.stat().st_mode & 0o777 == 0o600
            name, password = secret.read_text().split()
            assert name == "admin" and password not in text
            assert cat.check_password("admin", password) is not None
            assert httpx.get(base + "/login").status_code == 200
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = None
            if services is not None:
                services.close()
    assert code == 0, out.read_text()


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
