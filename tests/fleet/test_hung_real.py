"""A real `ebbtide worker` stopped with SIGSTOP mid-job is reaped after its pool's hung timeout.

Real processes (issue 15): `ebbtide scaler` with the local provider starts the worker; the SQLite
queue and catalog and the file store are real. The job is a `command` job that writes one line per
start to a file, then `exec`s a sleep (no shell grandchild: a killed worker's job command dies
through PR_SET_PDEATHSIG, which a grandchild does not inherit). We stop the worker and its
children: heartbeats stop; after `hung_timeout` the controller stops it through the local
provider (`kill`: SIGKILL, which a stopped process obeys; its command dies with it), marks it gone
(its attempt lost, the job queued) and, the pool's one slot free again, starts a worker that runs
the job once more.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from fleet_env import wait_for, write_config

from ebbtide.catalog.states import JobState
from ebbtide.clock import SYSTEM_CLOCK
from ebbtide.fleet.causes import Note
from ebbtide.fleet.providers.local import LocalProvider
from ebbtide.services import open_services
from ebbtide.worker.intake import submit_job

HUNG = 6.0


def _signal_tree(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        proc = psutil.Process(pid)
        for p in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.send_signal(sig)


@pytest.mark.slow
def test_a_stopped_worker_is_reaped_after_the_hung_timeout_and_its_job_redone_once(tmp_path: Path) -> None:
    pools = [{"name": "local", "provider": "local", "min": 0, "max": 1, "boot_time": 2, "hung_timeout": HUNG}]
    path, settings = write_config(tmp_path, pools=pools)
    services = open_services(settings)
    marker = tmp_path / "starts.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBBTIDE_")}
    env["EBBTIDE_CONFIG"] = str(path)
    log = open(tmp_path / "scaler.log", "wb")  # noqa: SIM115 - closed in finally
    scaler = subprocess.Popen([sys.executable, "-m", "ebbtide.cli.main", "scaler"], env=env,
                              stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    stopped: int | None = None
    try:
        job = submit_job(services, "command", {"command": f"echo start >> {marker}; exec sleep 4"})
        worker = wait_for(lambda: next((w for w in services.catalog.list_workers(pool="local")
                                        if w.job_id == job.id), None), 90, "a worker running the job")
        wait_for(marker.exists, 30, "the command to start")
        assert worker.pid
        stopped = worker.pid
        children = [c.pid for c in psutil.Process(stopped).children(recursive=True)]
        _signal_tree(stopped, signal.SIGSTOP)
        t_stop = time.monotonic()

        def reaped() -> float | None:
            return next((d.at for d in services.catalog.recent_decisions(limit=500)
                         if Note.REAP_HUNG in d.notes), None)  # fmt: skip

        reaped_at = wait_for(reaped, HUNG + 60, "the controller to reap the stopped worker", step=0.2)
        assert time.monotonic() - t_stop < HUNG + 60
        last_seen = services.catalog.get_worker(worker.id).last_seen  # type: ignore[union-attr]
        # never before the hung timeout of silence (its last beat came before the stop)
        assert reaped_at - last_seen >= HUNG, (reaped_at, last_seen)
        wait_for(lambda: not psutil.pid_exists(stopped) or psutil.Process(stopped).status() == "zombie",
                 30, "the stopped worker's process to exit")
        assert all(not psutil.pid_exists(p) or psutil.Process(p).status() == "zombie" for p in children)
        wait_for(lambda: services.catalog.get_job(job.id).state == JobState.SUCCEEDED, 90, "the job redone")
        # started twice: the stopped attempt and exactly one redo
        assert marker.read_text().splitlines() == ["start", "start"]
        attempts = services.catalog.attempts(job.id)
        assert sum(1 for a in attempts if a.won) == 1 and attempts[-1].won, attempts
        assert len({a.worker_id for a in attempts}) == 2, attempts
        gone = [w for w in services.catalog.list_workers(pool="local", include_gone=True) if w.pid == stopped]
        assert gone and gone[0].state == "gone"
    finally:
        if stopped is not None:
            _signal_tree(stopped, signal.SIGCONT)
        scaler.send_signal(signal.SIGTERM)
        try:
            scaler.wait(15)
        except subprocess.TimeoutExpired:
            scaler.kill()
        log.close()
        leftover = LocalProvider(settings.fleet.pools[0], settings.data_path, SYSTEM_CLOCK)
        pids = [i.pid for i in leftover.inventory() if i.pid]
        leftover.stop_all()
        psutil.wait_procs([psutil.Process(p) for p in pids if psutil.pid_exists(p)], timeout=10)
        services.close()
