"""Soak: N jobs through a real fleet while the queue/catalog server restarts every M seconds.

    ./.venv/bin/python bench/soak.py [--jobs 40] [--every 12] [--outage 4] [--backends postgresql redis]

Per backend, a private server (PostgreSQL 15 as queue and catalog; Redis without persistence as
the queue, SQLite catalog) is started on a free port — never the shared 5432/6379 — with an
`ebbtide scaler` and two `ebbtide worker` processes (tests/faults/scenario.py). Short `command`
jobs are submitted at a steady rate (a submit refused during an outage is retried, as a client
would); a restarter kills the server every `--every` s for `--outage` s. Printed: submitted,
completed, duplicates (extra winning finishes: must be 0), stuck (not done at the end), and max
recovery time (server back → next job finished, over restarts that found work waiting). The
baseline is the same run without restarts; "slowdown" is the ratio of the two wall times.

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


@dataclass
class Result:
    backend: str
    restarts: int
    submitted: int
    completed: int
    duplicates: int
    stuck: int
    max_recovery: float | None
    wall: float


def _succeeded(fleet: Fleet) -> int:
    return sum(1 for s in fleet.states().values() if s == JobState.SUCCEEDED)


def soak(backend: str, jobs: int, every: float, outage: float, restarts_on: bool, timeout: float) -> Result:
    server: PrivatePostgres | PrivateRedis = PrivatePostgres() if backend == "postgresql" else PrivateRedis()
    data = Path(tempfile.mkdtemp(prefix=f"ebbtide-soak-{backend}-"))
    fleet: Fleet | None = None
    stop = threading.Event()
    returns: list[float] = []
    restarts: list[float] = []
    try:
        catalog = server.url if backend == "postgresql" else None
        fleet = Fleet.start(write_config(data, {"url": server.url}, catalog))
        current = fleet

        def restarter() -> None:
            while not stop.wait(every):
                server.stop()
                time.sleep(outage)
                server.start()
                back = time.monotonic()
                states = ride_out(current.states, "states", budget=60)
                if any(st != JobState.SUCCEEDED for st in states.values()):
                    returns.append(back)  # recovery is measured only when work was waiting
                restarts.append(back)

        t0 = time.monotonic()
        thread = threading.Thread(target=restarter, daemon=True)
        if restarts_on:
            thread.start()
        for _ in range(jobs):  # a steady trickle, so outages hit queued, running and new jobs
            ride_out(lambda: current.submit_one(0.3), "submit", budget=120)
            time.sleep(0.25)
        done = _wait(lambda: _safe(lambda: current.done()), timeout)
        wall = time.monotonic() - t0
        stop.set()
        if restarts_on:
            thread.join(every + outage + 30)
        recoveries = [_recovery(fleet, r) for r in returns]
        known = [r for r in recoveries if r is not None]
        states = ride_out(fleet.states, "states", budget=60)
        dups = sum(max(0, fleet.wins(j) - 1) for j in fleet.jobs)
        return Result(
            backend, len(restarts), len(fleet.jobs),
            sum(1 for s in states.values() if s == JobState.SUCCEEDED), dups,
            0 if done else sum(1 for s in states.values() if s != JobState.SUCCEEDED),
            max(known) if known else None, wall,
        )
    finally:
        stop.set()
        if fleet is not None:
            fleet.close()
        server.close()


def _recovery(fleet: Fleet, back_at: float) -> float | None:
    """Seconds from the server's return to the first win after it (from the ledger's times)."""
    wall_back = time.time() - (time.monotonic() - back_at)
    finishes = [a.finished_at for j in fleet.jobs for a in fleet.services.catalog.attempts(j)
                if a.outcome == "succeeded" and a.finished_at is not None and a.finished_at >= wall_back]
    return min(finishes) - wall_back if finishes else None


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
                "max recovery", "wall", "slowdown"):
        table.add_column(col, justify="left" if col in ("backend", "run") else "right")
    for backend in args.backends:
        base = soak(backend, args.jobs, args.every, args.outage, False, args.timeout)
        run = soak(backend, args.jobs, args.every, args.outage, True, args.timeout)
        for label, r in (("baseline", base), ("restarts", run)):
            rec = "-" if r.max_recovery is None else f"{r.max_recovery:.1f}s"
            table.add_row(backend, label, str(r.restarts), str(r.submitted), str(r.completed),
                          str(r.duplicates), str(r.stuck), rec, f"{r.wall:.1f}s",
                          f"{r.wall / base.wall:.2f}x")
    console.print(table)


if __name__ == "__main__":
    main()
