"""The completion ledger: first finish wins, duplicates are recorded and ignored, races included."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from ebbtide.catalog import SqlCatalog, open_catalog
from ebbtide.catalog.records import Job, Media, User
from ebbtide.catalog.states import JobState, MediaState
from ebbtide.clock import VirtualClock
from ebbtide.errors import IllegalTransition, NotFound


def _queued(cat: SqlCatalog, owner: User) -> tuple[Media, Job]:
    m = cat.create_media(owner.id, "clip", "src/clip.mp4", 10, duration=2.0)
    return m, cat.create_job("transcode", {"media_id": m.id}, owner_id=owner.id, media_id=m.id)


def test_first_finish_wins_and_a_later_duplicate_is_recorded(cat: SqlCatalog, alice: User) -> None:
    _, job = _queued(cat, alice)
    a1 = cat.start_attempt(job.id, "w-1", 1)
    a2 = cat.start_attempt(job.id, "w-2", 2)  # a lapsed lease re-delivered the message
    assert a1 and a2
    assert cat.finish_attempt(job.id, a2.id, JobState.SUCCEEDED, result={"n": 2}) is True
    assert cat.finish_attempt(job.id, a1.id, JobState.SUCCEEDED, result={"n": 1}) is False
    assert cat.finish_attempt(job.id, a2.id, JobState.SUCCEEDED) is True  # idempotent repeat
    j = cat.get_job(job.id)
    assert (j.state, j.result, j.worker_id) == (JobState.SUCCEEDED, {"n": 2}, "w-2")
    by_id = {a.id: a for a in cat.attempts(job.id)}
    assert (by_id[a2.id].outcome, by_id[a2.id].won) == ("succeeded", True)
    assert (by_id[a1.id].outcome, by_id[a1.id].won) == ("duplicate", False)
    assert by_id[a1.id].finished_at is not None
    # a terminal job is never started again: the worker acks and skips
    assert cat.start_attempt(job.id, "w-3", 3) is None
    assert len(cat.attempts(job.id)) == 2
    # a late failure of the losing attempt cannot undo the success
    with pytest.raises(IllegalTransition):
        cat.finish_attempt(job.id, a1.id, JobState.DEAD, error="boom")
    assert cat.get_job(job.id).state == JobState.SUCCEEDED


def test_retry_then_dead_then_redrive(cat: SqlCatalog, alice: User) -> None:
    m, job = _queued(cat, alice)
    a1 = cat.start_attempt(job.id, "w-1", 1)
    assert a1
    assert cat.finish_attempt(job.id, a1.id, JobState.QUEUED, error="ffmpeg exited 1") is True
    j = cat.get_job(job.id)
    assert (j.state, j.error) == (JobState.QUEUED, "ffmpeg exited 1")
    assert cat.get_media(m.id).state == MediaState.QUEUED
    with pytest.raises(IllegalTransition):  # only a dead or failed job can be redriven
        cat.requeue(job.id)

    a2 = cat.start_attempt(job.id, "w-2", 2)
    assert a2 and cat.get_job(job.id).attempts == 2
    assert cat.finish_attempt(job.id, a2.id, JobState.DEAD, error="gave up after 2 receives") is True
    j = cat.get_job(job.id)
    assert (j.state, j.error) == (JobState.DEAD, "gave up after 2 receives")
    media = cat.get_media(m.id)
    assert (media.state, media.error) == (MediaState.FAILED, "gave up after 2 receives")
    assert [a.outcome for a in cat.attempts(job.id)] == ["failed", "dead"]
    assert cat.start_attempt(job.id, "w-3", 3) is None

    back = cat.requeue(job.id)  # redrive from the dead letters
    assert (back.state, back.error) == (JobState.QUEUED, None)
    assert cat.get_media(m.id).state == MediaState.QUEUED
    a3 = cat.start_attempt(job.id, "w-3", 1)
    assert a3 and cat.finish_attempt(job.id, a3.id, JobState.SUCCEEDED)
    assert cat.job_counts()[JobState.SUCCEEDED] == 1


def test_mark_dead_without_a_running_attempt(cat: SqlCatalog, alice: User) -> None:
    m, job = _queued(cat, alice)
    a1 = cat.start_attempt(job.id, "w-1", 1)  # its worker then crashed
    assert a1
    cat.mark_dead(job.id, "receive count 5 exceeded max_receives 4")
    assert cat.get_job(job.id).state == JobState.DEAD
    assert cat.get_media(m.id).error == "receive count 5 exceeded max_receives 4"
    assert cat.attempts(job.id)[0].outcome == "lost"
    cat.mark_dead(job.id, "again")  # idempotent
    assert cat.get_job(job.id).error == "receive count 5 exceeded max_receives 4"
    # the crashed worker comes back late: dead is terminal, its finish is only recorded
    assert cat.finish_attempt(job.id, a1.id, JobState.SUCCEEDED) is False
    assert cat.get_job(job.id).state == JobState.DEAD
    with pytest.raises(NotFound):
        cat.mark_dead("0" * 32, "x")


def test_stale_attempt_failure_does_not_requeue_a_newer_attempt(cat: SqlCatalog, alice: User) -> None:
    _, job = _queued(cat, alice)
    old = cat.start_attempt(job.id, "w-1", 1)
    new = cat.start_attempt(job.id, "w-2", 2)
    assert old and new
    assert cat.finish_attempt(job.id, old.id, JobState.QUEUED, error="killed") is False
    assert cat.get_job(job.id).state == JobState.RUNNING
    cat.report_progress(job.id, old.id, 0.9)  # stale progress is ignored
    cat.report_progress(job.id, new.id, 0.25)
    assert cat.get_job(job.id).progress == 0.25
    with pytest.raises(IllegalTransition):
        cat.finish_attempt(job.id, new.id, JobState.RUNNING)
    with pytest.raises(NotFound):
        cat.finish_attempt(job.id, "0" * 32, JobState.SUCCEEDED)


def test_eight_threads_finish_the_same_job_and_exactly_one_wins(cat: SqlCatalog, alice: User) -> None:
    _, job = _queued(cat, alice)
    attempts = [cat.start_attempt(job.id, f"w-{i}", i + 1) for i in range(8)]
    barrier = threading.Barrier(8)
    results: list[bool] = []
    errors: list[BaseException] = []

    def finish(attempt_id: str) -> None:
        try:
            barrier.wait(timeout=10)
            results.append(
                cat.finish_attempt(job.id, attempt_id, JobState.SUCCEEDED, result={"by": attempt_id})
            )
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=finish, args=(a.id,)) for a in attempts if a]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(results) == [False] * 7 + [True]
    ledger = cat.attempts(job.id)
    winners = [a for a in ledger if a.won]
    assert len(winners) == 1 and sum(a.outcome == "duplicate" for a in ledger) == 7
    assert cat.get_job(job.id).result == {"by": winners[0].id}


def test_two_attempts_publish_at_once_and_one_prefix_is_published(cat: SqlCatalog, alice: User) -> None:
    m, job = _queued(cat, alice)
    atts = [cat.start_attempt(job.id, f"w-{i}", i + 1) for i in range(2)]
    barrier = threading.Barrier(2)
    outcome: dict[str, bool] = {}

    def publish(attempt_id: str) -> None:
        prefix = f"media/{m.id}/{attempt_id}/"
        barrier.wait(timeout=10)
        outcome[prefix] = cat.publish_media(
            m.id, job.id, attempt_id, prefix, prefix + "master.m3u8", (), prefix + "t.jpg", None
        )

    threads = [threading.Thread(target=publish, args=(a.id,)) for a in atts if a]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    winners = [p for p, won in outcome.items() if won]
    assert len(outcome) == 2 and len(winners) == 1
    media = cat.get_media(m.id)
    assert media.state == MediaState.COMPLETE
    assert (media.published_prefix, media.master_key, media.thumbnail_key) == (
        winners[0],
        winners[0] + "master.m3u8",
        winners[0] + "t.jpg",
    )
    assert sorted(a.outcome or "" for a in cat.attempts(job.id)) == ["duplicate", "succeeded"]


_CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    from ebbtide.catalog import open_catalog
    from ebbtide.catalog.states import JobState, WorkerState
    url, go, worker = sys.argv[1:4]
    cat = open_catalog(url)  # all children migrate the same fresh file at once
    for i in range(15):  # many processes heartbeating together never hit "database is locked"
        cat.heartbeat(worker, "local", WorkerState.BUSY if i else WorkerState.IDLE, pid=os.getpid())
    deadline = time.monotonic() + 60
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            sys.exit("no go file")
        time.sleep(0.002)
    plan = json.loads(open(go).read())
    attempt_id = plan["attempts"][worker]
    won = cat.finish_attempt(plan["job_id"], attempt_id, JobState.SUCCEEDED, result={"by": attempt_id})
    print(json.dumps({"won": won}))
    """
)


def test_four_processes_migrate_heartbeat_and_race_on_one_sqlite_file(tmp_path: Path) -> None:
    """Processes, not threads: separate connections and locks on one file that none has created yet."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    go = tmp_path / "go.json"
    names = [f"proc-{i}" for i in range(4)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, url, str(go), name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    try:
        cat = open_catalog(url, clock=VirtualClock())  # the parent joins the migration race too
        user = cat.create_user("u")
        _, job = _queued(cat, user)
        atts = {name: cat.start_attempt(job.id, name, i + 1) for i, name in enumerate(names)}
        deadline = time.monotonic() + 60
        while len(cat.list_workers()) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        plan = {"job_id": job.id, "attempts": {n: a.id for n, a in atts.items() if a}}
        (tmp_path / "go.tmp").write_text(json.dumps(plan))
        (tmp_path / "go.tmp").rename(go)  # atomic: children never read half a plan
        outs = [p.communicate(timeout=90) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "database is locked" not in err
    wins = [json.loads(out.strip().splitlines()[-1])["won"] for out, _ in outs]
    assert sorted(wins) == [False, False, False, True]
    ledger = cat.attempts(job.id)
    assert sum(a.won for a in ledger) == 1 and sum(a.outcome == "duplicate" for a in ledger) == 3
    assert {w.id for w in cat.list_workers()} == set(names)
    assert cat.get_job(job.id).state == JobState.SUCCEEDED
    cat.close()


def test_a_lapsed_attempt_that_finishes_after_its_retry_failed_still_wins(
    cat: SqlCatalog, alice: User
) -> None:
    m, job = _queued(cat, alice)
    slow = cat.start_attempt(job.id, "w-1", 1)  # lease lapses while it works
    retry = cat.start_attempt(job.id, "w-2", 2)
    assert slow and retry
    assert cat.finish_attempt(job.id, retry.id, JobState.QUEUED, error="oom") is True
    assert cat.get_job(job.id).state == JobState.QUEUED
    prefix = f"media/{m.id}/{slow.id}/"
    assert cat.publish_media(m.id, job.id, slow.id, prefix, prefix + "master.m3u8", (), None, None)
    assert (cat.get_job(job.id).state, cat.get_media(m.id).state) == (JobState.SUCCEEDED, MediaState.COMPLETE)
    assert cat.start_attempt(job.id, "w-3", 3) is None  # the queued message is acked and skipped
