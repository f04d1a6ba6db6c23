"""Ctrl-C on `ebbtide up` mid-job (issue 15): `up` waits for the worker grace, the job in hand is
finished (or released) before `up` exits, and after a restart it has completed exactly once.

Real processes: `ebbtide up --no-web` runs the controller and a real local `ebbtide worker`, which
runs a real `command` job. The grace (14 s) is longer than the 10 s `up` used to wait before it
killed its workers, and the job needs about 12 s after the interrupt.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from fleet_env import wait_for, write_config

from ebbtide.catalog.states import JobState
from ebbtide.config import load_settings
from ebbtide.services import open_services
from ebbtide.worker.intake import submit_job

SCRIPT = """import pathlib, sys, time
out = pathlib.Path(sys.argv[1])
(out.parent / "started").touch()
time.sleep(12)
with out.open("a") as f:
    f.write("done\\n")
"""


def _up(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "ebbtide.cli.main", "up", "--no-web"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, cwd=cwd)


def test_ctrl_c_on_up_mid_job_finishes_it_and_it_completes_exactly_once(tmp_path: Path) -> None:
    path, _ = write_config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["worker"]["grace"] = 14
    raw["queue"]["lease"] = raw["worker"].pop("lease")
    path.write_text(yaml.safe_dump(raw))
    settings = load_settings(path, env={})
    services = open_services(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBBTIDE_")}
    env["EBBTIDE_CONFIG"] = str(path)
    script, done = tmp_path / "job.py", tmp_path / "out" / "done.txt"
    script.write_text(SCRIPT)
    done.parent.mkdir()
    log = tmp_path / "up.log"
    up = _up(env, tmp_path, log)
    try:
        job = submit_job(services, "command", {"command": f"{sys.executable} {script} {done}"})
        wait_for(lambda: (done.parent / "started").exists(), 60, "the job to start on a local worker")
        t0 = time.monotonic()
        up.send_signal(signal.SIGINT)  # Ctrl-C
        code = up.wait(40)
        waited = time.monotonic() - t0
        assert code == 0, log.read_text()
        # the worker had its grace: the job finished before `up` returned; nothing was killed
        assert waited >= 10.0, waited
        assert done.read_text() == "done\n"
        j = services.catalog.get_job(job.id)
        assert j.state == JobState.SUCCEEDED
        assert all(a.finished_at is not None for a in services.catalog.attempts(job.id))
        assert "killed" not in log.read_text()
        assert services.queue.stats().in_flight == 0 and services.queue.stats().visible == 0
        # restart: nothing left to do, the job is not run again
        up = _up(env, tmp_path, log)
        wait_for(lambda: len(services.catalog.recent_decisions(500)) > 0, 30, "the restarted controller")
        time.sleep(3)
        assert done.read_text() == "done\n"
        assert [a.won for a in services.catalog.attempts(job.id)].count(True) == 1
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(40)
            except subprocess.TimeoutExpired:
                up.kill()
        services.close()
