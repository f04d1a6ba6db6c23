"""Worker bookkeeping around outages: redrive of a dead job end to end, a lease the queue forgot
(keep working) versus one another attempt took (cancel), orphaned local workers exiting, and a
full disk reported in one line."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner
from worker_helpers import WorkerThread, spawn_worker, wait_for, worker_logs

from ebbtide.catalog.states import JobState, MediaState
from ebbtide.cli.main import app
from ebbtide.media.samples import generate_clip
from ebbtide.worker.intake import submit_file, submit_job
from ebbtide.worker.orphan import ENV_LAUNCHER_PID, launcher_gone
from ebbtide.worker.runtime import Result, Worker


def test_dlq_redrive_of_a_dead_job_runs_it_once_more(make_env: Callable[..., Any], tmp_path: Path) -> None:
    # a long lease: on a loaded machine a 3 s lease can lapse between heartbeats, and with one
    # receive allowed that lost lease alone would bury the redriven job
    _, services, config = make_env(queue={"max_receives": 1, "lease": 60})
    owner = services.catalog.create_user("redrive")
    clip = generate_clip(tmp_path / "clip.mp4", seconds=1, width=320, height=240)
    media = submit_file(services, clip, owner.id)
    source = services.store.get_bytes(media.source_key)
    services.store.delete(media.source_key)  # the first attempt cannot read its source
    assert Worker(services, once=True, idle_exit=5, install_signals=False).run() == 1
    assert media.job_id and services.catalog.get_job(media.job_id).state == JobState.DEAD
    assert services.catalog.get_media(media.id).state == MediaState.FAILED
    assert services.queue.stats().dead == 1

    services.store.put_bytes(media.source_key, source)  # the operator fixed the cause
    out = CliRunner().invoke(app, ["--config", str(config), "dlq", "redrive"])
    assert out.exit_code == 0, out.output
    assert "redrove 1 dead letter(s); 1 job(s) queued again" in out.output
    assert services.catalog.get_job(media.job_id).state == JobState.QUEUED
    assert services.catalog.get_media(media.id).state == MediaState.QUEUED

    assert Worker(services, once=True, idle_exit=5, install_signals=False).run() == 0, (
        services.catalog.get_job(media.job_id).error
    )
    assert services.catalog.get_media(media.id).state == MediaState.COMPLETE
    attempts = services.catalog.attempts(media.job_id)
    assert [a.outcome for a in attempts] == ["dead", "succeeded"]
    assert services.queue.stats().backlog == 0 and services.queue.stats().dead == 0


def _running(services: Any, job_id: str) -> None:
    wait_for(lambda: services.catalog.get_job(job_id).state == JobState.RUNNING, 10, "the job to start")


def test_a_lease_the_queue_forgot_does_not_cancel_the_work(make_env: Callable[..., Any]) -> None:
    _, services, _ = make_env(queue={"lease": 0.6})
    job = submit_job(services, "command", {"command": "sleep 1.5"})
    w = WorkerThread(services, once=True, idle_exit=5).start()
    _running(services, job.id)
    services.queue.purge()  # as a Redis without persistence after a restart
    w.thread.join(20)
    assert w.code == 0 and w.worker.last_result is Result.SUCCEEDED
    assert [a.outcome for a in services.catalog.attempts(job.id)] == ["succeeded"]


def test_a_lease_another_attempt_took_cancels_the_work(make_env: Callable[..., Any]) -> None:
    _, services, _ = make_env(queue={"lease": 0.6})
    job = submit_job(services, "command", {"command": "sleep 30"})
    w = WorkerThread(services, once=True, idle_exit=5).start()
    _running(services, job.id)
    services.queue.purge()
    services.catalog.heartbeat("thief", "default", "busy")  # type: ignore[arg-type]
    services.catalog.start_attempt(job.id, "thief", 2)  # the ledger now names another attempt
    t0 = time.monotonic()
    w.thread.join(20)
    assert time.monotonic() - t0 < 10, "the cancelled job should stop long before its 30 s"
    assert w.worker.last_result is Result.LOST


def test_launcher_gone_is_decided_by_the_parent_pid() -> None:
    assert not launcher_gone({}, ppid=1)  # not launched by `up`: its supervisor decides
    assert not launcher_gone({ENV_LAUNCHER_PID: "4242"}, ppid=4242)
    assert launcher_gone({ENV_LAUNCHER_PID: "4242"}, ppid=1)


def test_orphaned_local_worker_exits_after_idle(make_env: Callable[..., Any]) -> None:
    _, _, config = make_env(worker={"orphan_idle_exit": 1})
    orphan = spawn_worker(config, env={ENV_LAUNCHER_PID: "1"})  # its launcher is not its parent
    kept = spawn_worker(config, env={ENV_LAUNCHER_PID: str(os.getpid())})  # launcher alive
    try:
        assert orphan.wait(120) == 0, worker_logs(config)  # start-up alone can take 30 s under load
        assert "idle exit" in worker_logs(config)
        assert kept.poll() is None  # no idle exit configured and its launcher lives: keeps serving
    finally:
        for p in (orphan, kept):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(20)


def test_a_full_disk_is_one_line_in_the_cli(make_env: Callable[..., Any], tmp_path: Path) -> None:
    settings, services, config = make_env()
    services.catalog.create_user("admin")
    clip = generate_clip(tmp_path / "big.mp4", seconds=4, width=640, height=360)
    # a real OS limit (RLIMIT_FSIZE → EFBIG) above every database file, below the clip
    biggest = max(p.stat().st_size for p in settings.data_path.rglob("*") if p.is_file())
    limit = max(2 * biggest, 300_000)
    assert clip.stat().st_size > limit

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run(
        [sys.executable, "-m", "ebbtide.cli.main", "-c", str(config), "submit", "--no-follow", str(clip)],
        capture_output=True, text=True, timeout=180, preexec_fn=limit_file_size,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "error: no space left" in proc.stderr and "hint:" in proc.stderr, proc.stderr
    assert services.catalog.list_media() == []  # nothing recorded, nothing queued
    assert services.queue.stats().backlog == 0
    leftovers = [p for p in (settings.data_path / "store").rglob("*") if p.is_file()] \
        if (settings.data_path / "store").exists() else []
    assert leftovers == [], leftovers  # nothing half-written kept in the store
