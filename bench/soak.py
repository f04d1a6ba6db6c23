"""Soak: N jobs through a real fleet while the queue/catalog server restarts every M seconds.

    ./.venv/bin/python bench/soak.py [--jobs 40] [--every 12] [--outage 4] [--backends postgresql redis]

Per backend, a private server (PostgreSQL 15 as queue and catalog; Redis without persistence as
the queue, SQLite catalog) is started on a free port — never the shared 5432/6379 — with an
`ebbtide scaler` and two `ebbtide worker` processes (tests/faults/scenario.py). Short `command`
jobs are submitted at a steady rate (a submit refused during an outage is retried, as a client
would); a restarter kills the server every `--every` s for `--outage` s. Printed: submitted,
completed, duplicates (extra winning finishes: must be 0), stuck (not done at the end), and, over
restarts that found work waiting (a job submitted and not finished when the server came back):

- first receive: server back → the first attempt started after it (a worker received a job and
  the ledger recorded it: processing resumed);
- first done: server back → the first job finished after it;
- overlapped: restarts whose next outage began before a job finished (their "first done" spans
  that next outage too, so it measures the restart cadence, not the recovery); "first done,
  clean" is the worst over the others.

The baseline is the same run without restarts; "slowdown" is the ratio of the two wall times.
Jobs are submitted 0.25 s apart: on a quiet machine 40 jobs are done before the first restart
(the "restarts" column then says 0), so use e.g. `--jobs 150` there.

Not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "faults"))

from scenario import Fleet, write_config
from servers import PrivatePostgres, PrivateRedis

from ebbtide.catalog.states import JobState
from ebbtide.worker.riding import ride_out


@dataclass(frozen=True)
class Restart:
    down: float  # wall-clock times (the ledger's clock)
    back: float
    waiting: bool  # a job was submitted and not finished when the server came back


@dataclass(frozen=True)
class Recovery:
    receive: float | None  # server back → first attempt started after it
    done: float | None  # server back → first win after it
    overlapped: bool  # the next outage began before that win


@dataclass
class Result:
    backend: str
    restarts: int
    submitted: int
    completed: int
    duplicates: int
    stuck: int
    recoveries: list[Recovery]
    wall: float


def _worst(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    missing = len(values) - len(known)
    text = f"{max(known):.1f}s" if known else "-"
    return text + (f" (+{missing} none)" if missing else "")


def _succeeded(fleet: Fleet) -> int:
    return sum(1 for s in fleet.states().values() if s == JobState.SUCCEEDED)


def soak(backend: str, jobs: int, every: float, outage: float, restarts_on: bool, timeout: float) -> Result:
    server: PrivatePostgres | PrivateRedis = PrivatePostgres() if backend == "postgresql" else PrivateRedis()
    data = Path(tempfile.mkdtemp(prefix=f"ebbtide-soak-{backend}-"))
    fleet: Fleet | None = None
    stop = threading.Event()
    restarts: list[Restart] = []
    submitted_at: dict[str, float] = {}
    try:
        catalog = server.url if backend == "postgresql" else None
        fleet = Fleet.start(write_config(data, {"url": server.url}, catalog))
        current = fleet

        def restarter() -> None:
            while not stop.wait(every):
                down = time.time()
                server.stop()
                time.sleep(outage)
                server.start()
                back = time.time()
                # "waiting" is decided afterwards from the ledger: a job submitted before `back`
                # with no win before it
                restarts.append(Restart(down, back, False))

        t0 = time.monotonic()
        thread = threading.Thread(target=restarter, daemon=True)
        if restarts_on:
            thread.start()
        for _ in range(jobs):  # a steady trickle, so outages hit queued, running and new jobs
            job_id = ride_out(lambda: current.submit_one(0.3), "submit", budget=120)
            submitted_at[job_id] = time.time()
            time.sleep(0.25)
        done = _wait(lambda: _safe(lambda: current.done()), timeout)
        wall = time.monotonic() - t0
        stop.set()
        if restarts_on:
            thread.join(every + outage + 30)
        states = ride_out(fleet.states, "states", budget=60)
        ledger = ride_out(lambda: {j: fleet.services.catalog.attempts(j) for j in fleet.jobs},
                          "attempts", budget=60)
        starts = sorted(a.started_at for atts in ledger.values() for a in atts)
        wins = {j: min((a.finished_at for a in atts if a.outcome == "succeeded" and a.finished_at),
                       default=None) for j, atts in ledger.items()}
        dups = sum(max(0, fleet.wins(j) - 1) for j in fleet.jobs)
        recoveries = [
            _recovery(r, nxt, starts, sorted(w for w in wins.values() if w is not None))
            for r, nxt in zip(restarts, [*restarts[1:], None])  # noqa: B905 (the last has no next)
            if _waiting(r.back, submitted_at, wins)
        ]
        return Result(
            backend, len(restarts), len(fleet.jobs),
            sum(1 for s in states.values() if s == JobState.SUCCEEDED), dups,
            0 if done else sum(1 for s in states.values() if s != JobState.SUCCEEDED),
            recoveries, wall,
        )
    finally:
        stop.set()
        if fleet is not None:
            fleet.close()
        server.close()


def _waiting(back: float, submitted_at: dict[str, float], wins: dict[str, float | None]) -> bool:
    """Work was waiting at `back`: a job submitted before it that had not won by then."""
    return any(t < back and (wins.get(j) is None or wins[j] >= back)  # type: ignore[operator]
               for j, t in submitted_at.items())


def _recovery(r: Restart, nxt: Restart | None, starts: list[float], wins: list[float]) -> Recovery:
    """Seconds from the server's return to the first attempt started / first win after it."""
    receive = next((t - r.back for t in starts if t >= r.back), None)
    done = next((t - r.back for t in wins if t >= r.back), None)
    overlapped = nxt is not None and (done is None or r.back + done > nxt.down)
    return Recovery(receive, done, overlapped)


def _safe(fn: Callable[[], bool]) -> bool:
    try:
        return fn()
    except Exception:
        return False


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=40)
    ap.add_argument("--every", type=float, default=12.0, help="seconds between restarts")
    ap.add_argument("--outage", type=float, default=4.0, help="seconds the server stays down")
    ap.add_argument("--backends", nargs="+", default=["postgresql", "redis"], choices=["postgresql", "redis"])
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()
    console = Console(width=150)
    table = Table(title=f"soak: {args.jobs} jobs, a restart every {args.every:g}s for {args.outage:g}s")
    for col in ("backend", "run", "restarts", "submitted", "completed", "duplicates", "stuck",
                "first receive", "first done", "overlapped", "first done, clean", "wall", "slowdown"):
        table.add_column(col, justify="left" if col in ("backend", "run") else "right")
    for backend in args.backends:
        base = soak(backend, args.jobs, args.every, args.outage, False, args.timeout)
        run = soak(backend, args.jobs, args.every, args.outage, True, args.timeout)
        for label, r in (("baseline", base), ("restarts", run)):
            rec = r.recoveries
            clean = [x.done for x in rec if not x.overlapped]
            table.add_row(backend, label, str(r.restarts), str(r.submitted), str(r.completed),
                          str(r.duplicates), str(r.stuck),
                          _worst([x.receive for x in rec]) if rec else "-",
                          _worst([x.done for x in rec]) if rec else "-",
                          f"{sum(x.overlapped for x in rec)}/{len(rec)}" if rec else "-",
                          _worst(clean) if clean else "-",
                          f"{r.wall:.1f}s", f"{r.wall / base.wall:.2f}x")
            for i, x in enumerate(rec):  # per restart, for the record
                console.print(f"  {backend} {label} restart {i + 1}: first receive "
                              f"{_fmt(x.receive)}, first done {_fmt(x.done)}"
                              f"{' (next outage began first)' if x.overlapped else ''}")
    console.print(table)


if __name__ == "__main__":
    main()
