"""Four consumer processes on one SQLite queue file; one is SIGKILLed while it holds a lease."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3
import time
from pathlib import Path

from ebbtide.queue.sqlite import SqliteQueue

MESSAGES = 200
LEASE = 1.0


def _record(done_path: str) -> sqlite3.Connection:
    db = sqlite3.connect(done_path, isolation_level=None, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS done (job_id TEXT, pid INTEGER, receive_count INTEGER)")
    return db


def _consume(queue_path: str, done_path: str, victim: bool, holding: mp.synchronize.Event) -> None:
    """Process jobs until the queue's backlog is empty; the victim freezes holding its first job."""
    q = SqliteQueue(queue_path, max_receives=5)
    done = _record(done_path)
    give_up = time.monotonic() + 90
    while time.monotonic() < give_up:
        got = q.receive(wait=0.3, lease=LEASE)
        if not got:
            if q.stats().backlog == 0:
                return
            continue
        for d in got:
            if victim:
                Path(done_path + ".held").write_text(d.body["job_id"])
                holding.set()
                time.sleep(120)  # "working" when the SIGKILL lands
            done.execute("INSERT INTO done VALUES (?,?,?)", (d.body["job_id"], os.getpid(), d.receive_count))
            q.ack(d)


def test_sigkill_mid_lease_loses_nothing(tmp_path: Path) -> None:
    queue_path, done_path = str(tmp_path / "queue.db"), str(tmp_path / "done.db")
    q = SqliteQueue(queue_path, max_receives=5)
    for i in range(MESSAGES):
        q.send({"job_id": f"j{i}", "kind": "command"})
    _record(done_path).close()

    ctx = mp.get_context("spawn")
    holding = ctx.Event()
    procs = [
        ctx.Process(target=_consume, args=(queue_path, done_path, n == 0, holding), daemon=True)
        for n in range(4)
    ]
    victim = procs[0]
    try:
        # The victim starts first so it surely holds a lease however slowly processes spawn here;
        # the three others then work beside it and it is killed mid-lease.
        victim.start()
        assert holding.wait(60), f"the victim never took a job (exit code {victim.exitcode})"
        for p in procs[1:]:
            p.start()
        time.sleep(0.2)
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(10)
        assert victim.exitcode == -signal.SIGKILL
        for p in procs[1:]:
            p.join(90)
            assert p.exitcode == 0
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()

    held = Path(done_path + ".held").read_text()
    rows = sqlite3.connect(done_path).execute("SELECT job_id, pid, receive_count FROM done").fetchall()
    assert {r[0] for r in rows} == {f"j{i}" for i in range(MESSAGES)}, "a message was lost"
    redelivered = [r for r in rows if r[0] == held]
    assert len(redelivered) == 1
    assert redelivered[0][1] != victim.pid
    assert redelivered[0][2] == 2  # the killed lease lapsed and the message came back once
    assert victim.pid not in {r[1] for r in rows}
    s = q.stats()
    assert (s.visible, s.in_flight, s.delayed, s.dead) == (0, 0, 0, 0)
    q.close()
