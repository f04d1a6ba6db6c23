"""Jobs per second through the SQLite queue (send + receive + ack), beside a baseline in the same run.

    ./.venv/bin/python bench/queue_bench.py [--jobs 3000] [--consumers 1 4] [--repeat 3]

One producer (this process) sends `--jobs` messages while N consumer processes (forked from a
preloaded forkserver, warmed up and started together) receive and ack them; "live" is jobs /
wall time from the first send to the last ack, "full queue" times only the drain of a prefilled
queue. Both queues use WAL with synchronous=NORMAL so the comparison is fair.
The baseline is persist-queue's SQLiteAckQueue (get → ack). It has no cross-process leasing, so
with several consumers it may deliver a job twice; the "dups" column says how often.

Not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ebbtide.queue.sqlite import SqliteQueue


@dataclass(frozen=True)
class Result:
    backend: str
    consumers: int
    jobs: int
    seconds: float
    processed: int

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds


# -- ebbtide --------------------------------------------------------------------------------------


def _open_ebbtide(path: str) -> SqliteQueue:
    return SqliteQueue(path, name="bench")


def _ebbtide_consumer(path: str, ready: Barrier, done: Event, counter: Synchronized[int]) -> None:
    q = _open_ebbtide(path)
    ready.wait()
    n = 0
    while True:
        got = q.receive(wait=0.2, lease=60)
        if not got:
            if done.is_set():
                break
            continue
        for d in got:
            q.ack(d)
            n += 1
    with counter.get_lock():
        counter.value += n


def _ebbtide_producer(path: str) -> Any:
    q = _open_ebbtide(path)
    return lambda i: q.send({"job_id": f"j{i}", "kind": "bench"})


# -- baseline: persist-queue ----------------------------------------------------------------------


def _open_persist(path: str) -> Any:
    from persistqueue import SQLiteAckQueue

    # auto_resume=False: otherwise each new consumer resets the others' in-flight jobs.
    q = SQLiteAckQueue(path, multithreading=True, auto_resume=False)
    conns: list[Any] = [q._getter, q._putter]
    for conn in {id(c): c for c in conns}.values():
        conn.execute("PRAGMA synchronous=NORMAL")
    return q


def _persist_consumer(path: str, ready: Barrier, done: Event, counter: Synchronized[int]) -> None:
    from persistqueue import Empty

    q = _open_persist(path)
    ready.wait()
    n = 0
    while True:
        try:
            item = q.get(block=True, timeout=0.2, raw=True)
        except Empty:
            if done.is_set():
                break
            continue
        q.ack(item)
        n += 1
    with counter.get_lock():
        counter.value += n


def _persist_producer(path: str) -> Any:
    q = _open_persist(path)
    return lambda i: q.put({"job_id": f"j{i}", "kind": "bench"})


BACKENDS = {
    "ebbtide sqlite": (_ebbtide_consumer, _ebbtide_producer, "queue.db"),
    "persist-queue SQLiteAckQueue": (_persist_consumer, _persist_producer, "pq"),
}


def _context() -> mp.context.ForkServerContext:
    """A forkserver with both queues imported: fresh, thread-free processes that start in milliseconds."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["__main__", "ebbtide.queue.sqlite", "persistqueue"])
    return ctx


def run(backend: str, consumers: int, jobs: int, workdir: Path, prefill: bool) -> Result:
    """prefill=False: send while consuming (end to end); True: fill first, then time the drain."""
    consumer, producer, leaf = BACKENDS[backend]
    mode = "drain" if prefill else "live"
    workdir.mkdir(parents=True, exist_ok=True)
    path = str(workdir / f"{backend.split()[0]}-{consumers}-{mode}-{leaf}")
    send = producer(path)  # creates the schema before consumers open it
    if prefill:
        for i in range(jobs):
            send(i)
    ctx = _context()
    ready, done = ctx.Barrier(consumers + 1), ctx.Event()
    counter = ctx.Value("q", 0)
    procs = [ctx.Process(target=consumer, args=(path, ready, done, counter)) for _ in range(consumers)]
    for p in procs:
        p.start()
    ready.wait(timeout=60)
    start = time.perf_counter()
    if not prefill:
        for i in range(jobs):
            send(i)
    done.set()
    for p in procs:
        p.join(120)
        if p.exitcode != 0:
            raise SystemExit(f"{backend}: a consumer failed (exit {p.exitcode})")
    return Result(backend, consumers, jobs, time.perf_counter() - start, int(counter.value))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=3000)
    ap.add_argument("--consumers", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--repeat", type=int, default=3, help="runs per cell; the median is shown")
    args = ap.parse_args()
    console = Console(width=120)
    results: dict[tuple[str, int, bool], Result] = {}
    with tempfile.TemporaryDirectory(prefix="ebbtide-bench-") as tmp:
        for n in args.consumers:
            for prefill in (False, True):
                for backend in BACKENDS:
                    runs = []
                    for k in range(args.repeat):
                        with console.status(f"{backend}, {n} consumer(s), {args.jobs} jobs, run {k + 1}…"):
                            runs.append(run(backend, n, args.jobs, Path(tmp) / f"r{k}", prefill))
                    results[backend, n, prefill] = sorted(runs, key=lambda r: r.rate)[len(runs) // 2]

    table = Table(
        title=f"{args.jobs} jobs per run, median of {args.repeat}; WAL + synchronous=NORMAL for both"
    )
    cols = ("consumers", "measure", "backend", "seconds", "jobs/s", "dups", "ebbtide / baseline")
    for col in cols:
        table.add_column(col, justify="left" if col in ("backend", "measure") else "right")
    ours, base = list(BACKENDS)
    for n in args.consumers:
        for prefill in (False, True):
            measure = "receive+ack of a full queue" if prefill else "send+receive+ack, live"
            for backend in BACKENDS:
                r = results[backend, n, prefill]
                ratio = results[ours, n, prefill].rate / results[base, n, prefill].rate
                table.add_row(
                    str(n),
                    measure,
                    backend,
                    f"{r.seconds:.2f}",
                    f"{r.rate:,.0f}",
                    str(r.processed - r.jobs),
                    f"{ratio:.2f}x" if backend == ours else "",
                )
    console.print(table)


if __name__ == "__main__":
    main()
