"""The local pool: `ebbtide worker` processes on this machine.

Each launch writes `data_dir/fleet/<pool>/<worker_id>.pid` (pid and process start time), so a
restarted controller finds and adopts its workers, and a recycled pid is never mistaken for one.
Retiring sends SIGTERM: the worker finishes or releases its job (the controller only retires idle
ones anyway) and exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

from ebbtide.clock import Clock
from ebbtide.config.sections import PoolConfig
from ebbtide.config.types import format_duration
from ebbtide.fleet.providers.base import Instance, LaunchResult
from ebbtide.worker.orphan import ENV_LAUNCHER_PID

log = logging.getLogger("ebbtide.fleet.local")


class LocalProvider:
    name = "local"
    retires_specific = True

    def __init__(
        self,
        pool: PoolConfig,
        data_dir: Path,
        clock: Clock,
        config_path: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.pool = pool.name
        self.config = pool
        self.clock = clock
        self.dir = data_dir / "fleet" / pool.name
        self.config_path = config_path
        self.env = dict(os.environ if env is None else env)
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "ebbtide.cli.main", "worker", "--pool", self.pool]
        if self.config.idle_exit is not None:
            cmd += ["--idle-exit", format_duration(self.config.idle_exit)]
        return cmd

    def launch(self, n: int) -> LaunchResult:
        self.dir.mkdir(parents=True, exist_ok=True)
        started: list[Instance] = []
        for _ in range(n):
            wid = f"{self.pool}-{uuid.uuid4().hex[:8]}"
            env = {**self.env, "EBBTIDE_WORKER_ID": wid, "EBBTIDE_PROVIDER_ID": wid,
                   ENV_LAUNCHER_PID: str(os.getpid())}  # orphans idle-exit (worker/orphan.py)
            if self.config_path:
                env["EBBTIDE_CONFIG"] = str(Path(self.config_path).resolve())
            try:
                with open(self.dir / f"{wid}.log", "ab") as out:
                    proc = subprocess.Popen(
                        self.command(), env=env, stdout=out, stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL, start_new_session=True,
                    )
            except OSError as e:
                return LaunchResult(n, tuple(started), f"could not start a worker process: {e}")
            self._children[wid] = proc
            created = _create_time(proc.pid) or self.clock.now()
            (self.dir / f"{wid}.pid").write_text(f"{proc.pid}\n{created}\n")
            started.append(Instance(wid, self.pool, self.clock.now(), worker_id=wid, pid=proc.pid))
            log.info("started worker process", extra={"pool": self.pool, "worker": wid, "pid": proc.pid})
        return LaunchResult(n, tuple(started))

    def retire(self, ids: Sequence[str]) -> list[str]:
        # SIGCONT: a stopped (hung) worker must see the SIGTERM too
        return self._signal(ids, signal.SIGTERM, signal.SIGCONT)

    def kill(self, ids: Sequence[str]) -> list[str]:
        """Stop hung workers at once (SIGKILL; a stopped process dies too): a worker that stopped
        reporting cannot be trusted to drain, and its attempt is already closed as lost. Its job
        commands and ffmpeg die with it (PR_SET_PDEATHSIG). EC2 and ECS stop instances this way."""
        return self._signal(ids, signal.SIGKILL)

    def _signal(self, ids: Sequence[str], *signals: signal.Signals) -> list[str]:
        done = []
        for wid in ids:
            pidfile = self.dir / f"{wid}.pid"
            pid = _alive(pidfile)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    for sig in signals:
                        os.kill(pid, sig)
                done.append(wid)
            pidfile.unlink(missing_ok=True)  # gone from the inventory now; the child is reaped later
        self._reap_children()
        return done

    def inventory(self) -> list[Instance]:
        self._reap_children()
        if not self.dir.is_dir():
            return []
        out = []
        for pidfile in sorted(self.dir.glob("*.pid")):
            pid = _alive(pidfile)
            if pid is None:
                pidfile.unlink(missing_ok=True)
                continue
            wid = pidfile.stem
            out.append(Instance(wid, self.pool, pidfile.stat().st_mtime, worker_id=wid, pid=pid))
        return out

    def stop_all(self, timeout: float = 10.0) -> list[int]:
        """SIGTERM every worker of this pool, adopted ones too, and wait up to `timeout` for them
        to finish or release their jobs (`ebbtide up` passes the worker grace). Returns the pids
        that had to be killed."""
        found = self.inventory()
        procs = []
        for inst in found:
            with contextlib.suppress(psutil.Error):
                if inst.pid is not None:
                    procs.append(psutil.Process(inst.pid))
        self.retire([i.id for i in found])
        _, alive = psutil.wait_procs(procs, timeout=timeout)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                log.warning("worker did not stop within its grace; killing it", extra={"pid": p.pid})
                p.kill()
        psutil.wait_procs(alive, timeout=5)
        for proc in list(self._children.values()):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(1)
        self._children.clear()
        return [p.pid for p in alive]

    def _reap_children(self) -> None:
        for wid, proc in list(self._children.items()):
            if proc.poll() is not None:
                del self._children[wid]


def _create_time(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def _alive(pidfile: Path) -> int | None:
    """The pid in this file if that very process still runs (not a recycled pid, not a zombie)."""
    try:
        pid_s, created_s = pidfile.read_text().split()[:2]
        pid, created = int(pid_s), float(created_s)
    except (OSError, ValueError):
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE or abs(proc.create_time() - created) > 1.0:
            return None
    except psutil.Error:
        return None
    return pid
