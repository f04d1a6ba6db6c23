"""Retries with backoff, dead letters for a poison upload, generic jobs, single-run and idle exit."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from worker_helpers import WorkerThread, spawn_worker, stop_all, wait_for, worker_logs

from ebbtide.catalog.states import JobState, MediaState
from ebbtide.worker.intake import submit_job, submit_uploaded
from ebbtide.worker.runtime import Worker


def test_poison_upload_is_dead_at_once_while_other_jobs_finish(make_env: Callable[..., Any]) -> None:
    """Not a video is Permanent: dead on its first attempt (issue 10), not after max_receives."""
    _, services, _ = make_env(queue={"max_receives": 3, "backoff_base": 0.2, "backoff_max": 1})
    owner = services.catalog.create_user("carol")
    key = f"users/{owner.id}/media/poison1/source/holiday.mp4"
    services.store.put_bytes(key, b"Dear diary, this is not a video at all.\n" * 50)
    media = submit_uploaded(services, owner.id, key, "Holiday", 2050)  # the web path: no probe
    others = [submit_job(services, "command", {"command": f"echo {i}"}) for i in range(6)]
    workers = [WorkerThread(services, worker_id=f"p{i}").start() for i in range(2)]
    try:
        wait_for(lambda: services.queue.dead_letters(), 20, "the poison message in the dead letters")
        wait_for(
            lambda: all(services.catalog.get_job(j.id).state == JobState.SUCCEEDED for j in others),
            20, "the other jobs",
        )
    finally:
        stop_all(workers)
    dead = services.queue.dead_letters()
    assert len(dead) == 1 and json.loads(dead[0].body)["job_id"] == media.job_id
    assert dead[0].receive_count == 1
    assert "not a video file" in dead[0].reason
    media = services.catalog.get_media(media.id)
    assert media.state == MediaState.FAILED
    assert media.error and media.error.startswith("the upload is not a video file: holiday.mp4")
    assert "upload an MP4" in media.error
    job = services.catalog.get_job(media.job_id or "")
    assert job.state == JobState.DEAD and job.attempts == 1
    outcomes = [a.outcome for a in services.catalog.attempts(job.id)]
    assert outcomes == ["dead"]
    assert services.queue.stats().backlog == 0


def test_failed_command_retries_with_its_stderr(make_env: Callable[..., Any], tmp_path: Path) -> None:
    _, services, _ = make_env()
    mark = tmp_path / "tried-once"
    cmd = f"if [ -f {mark} ]; then exit 0; fi; touch {mark}; echo 'disk on fire' >&2; exit 3"
    job = submit_job(services, "command", {"command": cmd})
    t0 = time.monotonic()
    assert Worker(services, once=True, install_signals=False).run() == 1
    first = services.catalog.get_job(job.id)
    assert first.state == JobState.QUEUED and first.error is not None
    assert "status 3" in first.error and "disk on fire" in first.error
    status = json.loads(services.store.get_bytes(f"jobs/{job.id}/status.json"))
    assert status["state"] == "queued" and "disk on fire" in status["error"]
    assert services.queue.stats().delayed == 1  # released with backoff, not at once
    assert Worker(services, once=True, install_signals=False).run() == 0
    assert time.monotonic() - t0 >= 0.1  # backoff_base
    assert services.catalog.get_job(job.id).state == JobState.SUCCEEDED
    assert [a.outcome for a in services.catalog.attempts(job.id)] == ["failed", "succeeded"]


def test_python_job_with_inputs_outputs_and_status(make_env: Callable[..., Any], tmp_path: Path) -> None:
    _, services, _ = make_env()
    data = tmp_path / "problem.json"
    data.write_text('{"shifts": 3}')
    job = submit_job(services, "python:worker_pyjobs:solve", {"x": 21}, inputs={"problem.json": data})
    assert json.loads(services.store.get_bytes(f"jobs/{job.id}/status.json"))["state"] == "queued"
    assert Worker(services, once=True, install_signals=False).run() == 0
    done = services.catalog.get_job(job.id)
    assert done.state == JobState.SUCCEEDED and done.result == {"answer": 42}
    assert services.store.get_bytes(f"jobs/{job.id}/output/answer.txt") == b"42"
    status = json.loads(services.store.get_bytes(f"jobs/{job.id}/status.json"))
    assert status["state"] == "succeeded" and status["progress"] == 1.0
    assert status["outputs"] == [f"jobs/{job.id}/output/answer.txt"]
    assert status["finished"] >= status["started"]


def test_command_sees_payload_inputs_and_env(make_env: Callable[..., Any], tmp_path: Path) -> None:
    _, services, _ = make_env()
    src = tmp_path / "in.txt"
    src.write_text("hello")
    cmd = (
        'cat > "$EBBTIDE_JOB_DIR/output/stdin.json"; '
        'echo "$EBBTIDE_JOB_ID $EBBTIDE_JOB" > "$EBBTIDE_JOB_DIR/output/env.txt"; '
        'cp "$EBBTIDE_JOB_DIR/input/in.txt" "$EBBTIDE_JOB_DIR/output/copy.txt"'
    )
    job = submit_job(services, "command", {"command": cmd, "n": 7}, inputs={"in.txt": src})
    assert Worker(services, once=True, install_signals=False).run() == 0
    out = f"jobs/{job.id}/output/"
    assert json.loads(services.store.get_bytes(out + "stdin.json")) == {"command": cmd, "n": 7}
    assert services.store.get_bytes(out + "env.txt").decode().startswith(f"{job.id} {{")
    assert services.store.get_bytes(out + "copy.txt") == b"hello"


def test_single_run_takes_the_named_job(make_env: Callable[..., Any]) -> None:
    _, services, config = make_env()
    jobs = [submit_job(services, "command", {"command": f"exit {i}"}) for i in range(3)]
    proc = spawn_worker(config, env={"EBBTIDE_JOB_ID": jobs[0].id})  # exit 0
    assert proc.wait(30) == 0, worker_logs(config)
    proc = spawn_worker(config, env={"EBBTIDE_JOB_ID": jobs[2].id})  # exit 2: the job fails
    assert proc.wait(30) == 1, worker_logs(config)
    states = [services.catalog.get_job(j.id).state for j in jobs]
    assert states == [JobState.SUCCEEDED, JobState.QUEUED, JobState.QUEUED]
    assert services.catalog.get_job(jobs[1].id).attempts == 0  # released untouched
    stats = services.queue.stats()
    assert stats.in_flight == 0 and stats.visible + stats.delayed == 2  # nothing held, nothing lost


def test_single_run_without_a_message_runs_from_the_catalog(make_env: Callable[..., Any]) -> None:
    _, services, _ = make_env(queue={"wait": 0.5})
    job = services.catalog.create_job("command", {"command": "true"})  # never sent: a lost message
    t0 = time.monotonic()
    assert Worker(services, job_id=job.id, install_signals=False).run() == 0
    assert time.monotonic() - t0 < 5
    assert services.catalog.get_job(job.id).state == JobState.SUCCEEDED


def test_idle_exit_and_drain(make_env: Callable[..., Any]) -> None:
    _, services, _ = make_env(queue={"lease": 0.6})
    t0 = time.monotonic()
    assert Worker(services, idle_exit=0.5, install_signals=False).run() == 0
    assert 0.4 <= time.monotonic() - t0 < 3
    w = WorkerThread(services, worker_id="drain-me").start()
    wait_for(lambda: services.catalog.get_worker("drain-me"), 5, "the worker to register")
    services.catalog.set_drain("drain-me")
    w.thread.join(5)
    assert not w.thread.is_alive() and w.code == 0
    rec = services.catalog.get_worker("drain-me")
    assert rec is not None and rec.state == "gone"


def test_message_buried_by_the_queue_marks_its_job_dead(make_env: Callable[..., Any]) -> None:
    _, services, _ = make_env(queue={"max_receives": 1})
    media_owner = services.catalog.create_user("dave")
    job = submit_job(services, "command", {"command": "true"}, owner_id=media_owner.id)
    (d,) = services.queue.receive(wait=1, lease=0.1)  # a worker takes it and dies
    services.catalog.start_attempt(job.id, "crashed-worker", d.receive_count)
    time.sleep(0.2)
    assert services.queue.receive(wait=0.2, lease=1) == []  # the queue buries it on its own
    assert services.catalog.get_job(job.id).state == JobState.RUNNING
    assert Worker(services, idle_exit=0.1, install_signals=False).run() == 0
    dead = services.catalog.get_job(job.id)
    assert dead.state == JobState.DEAD and dead.error and "dead letters after 1 tries" in dead.error


def test_fleet_observation_also_buries_jobs_the_queue_dead_lettered(make_env: Callable[..., Any]) -> None:
    """With no worker left to start (the fleet at zero), the scaler's observation must do it."""
    from ebbtide.fleet.sources import CatalogQueueSource

    _, services, _ = make_env(queue={"max_receives": 1})
    owner = services.catalog.create_user("erin")
    job = submit_job(services, "command", {"command": "true"}, owner_id=owner.id)
    (d,) = services.queue.receive(wait=1, lease=0.1)
    services.catalog.start_attempt(job.id, "crashed-worker", d.receive_count)
    time.sleep(0.2)
    assert services.queue.receive(wait=0.2, lease=1) == []
    view = CatalogQueueSource(services.queue, services.catalog, services.clock).observe_queue()
    assert services.catalog.get_job(job.id).state == JobState.DEAD
    assert view.in_flight == 0 and view.running_work_seconds == 0
