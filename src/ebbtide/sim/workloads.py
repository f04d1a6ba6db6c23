"""Workloads: what arrives when. Trace files (CSV) and seeded generators.

A trace is the only input a simulation needs about the outside world; generators exist so the
seeds' scenarios and the benchmark can be rebuilt from a seed instead of stored.
"""

from __future__ import annotations

import csv
import io
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ebbtide.errors import EbbtideError

DAY = 86400.0
WEEK = 7 * DAY
TRACE_COLUMNS = ("arrival_s", "media_seconds", "size_bytes", "kind")
KINDS = ("transcode", "command")


class TraceError(EbbtideError):
    """A trace file that cannot be simulated; the message names the line."""


@dataclass(frozen=True)
class JobSpec:
    """One upload (or one solver run). `media_seconds` is the work: video length, or a run's
    wall seconds on a speed-1 worker for `command` jobs."""

    id: str
    arrival: float
    media_seconds: float
    size_bytes: int
    kind: str = "transcode"
    parent: str | None = None  # a part of a chunked upload (sim/chunked.py)
    overhead: float = 0.0  # fixed wall seconds on top of the work (a chunk's start-up)


Sizer = Callable[[random.Random], tuple[float, int]]


def read_trace(path: str | Path) -> list[JobSpec]:
    p = Path(path)
    if not p.is_file():
        raise TraceError(f"trace file {p} does not exist", hint="pass a CSV with " + ",".join(TRACE_COLUMNS))
    return parse_trace(p.read_text(), source=str(p))


def parse_trace(text: str, source: str = "trace") -> list[JobSpec]:
    """Parse CSV rows `arrival_s,media_seconds,size_bytes[,kind]`; a header row is optional."""
    jobs: list[JobSpec] = []
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if lineno == 1 and row[0].strip() == TRACE_COLUMNS[0]:
            continue
        if len(row) not in (3, 4):
            raise TraceError(
                f"{source}:{lineno}: expected 3 or 4 columns, got {len(row)}",
                hint="columns are " + ",".join(TRACE_COLUMNS),
            )
        try:
            arrival, media, size = float(row[0]), float(row[1]), int(float(row[2]))
        except ValueError:
            raise TraceError(
                f"{source}:{lineno}: arrival, media seconds and size must be numbers: {row!r}",
                hint="e.g. 3600,7200,4000000000,transcode",
            ) from None
        kind = row[3].strip() if len(row) == 4 and row[3].strip() else "transcode"
        if kind not in KINDS:
            raise TraceError(f"{source}:{lineno}: unknown kind {kind!r}", hint="kinds: " + ", ".join(KINDS))
        if not all(math.isfinite(v) for v in (arrival, media)) or arrival < 0 or media <= 0 or size < 0:
            raise TraceError(
                f"{source}:{lineno}: arrival must be ≥ 0, media seconds > 0 and size ≥ 0",
                hint="times are seconds from the start of the trace",
            )
        jobs.append(JobSpec(f"j{len(jobs):05d}", arrival, media, size, kind))
    if not jobs:
        raise TraceError(f"{source} holds no jobs", hint="columns are " + ",".join(TRACE_COLUMNS))
    return sort_jobs(jobs)


def write_trace(jobs: Iterable[JobSpec], path: str | Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(TRACE_COLUMNS)
        for j in jobs:
            w.writerow([f"{j.arrival:.3f}", f"{j.media_seconds:.3f}", j.size_bytes, j.kind])


def sort_jobs(jobs: Iterable[JobSpec]) -> list[JobSpec]:
    ordered = sorted(jobs, key=lambda j: (j.arrival, j.id))
    return [
        JobSpec(f"j{i:05d}", j.arrival, j.media_seconds, j.size_bytes, j.kind) for i, j in enumerate(ordered)
    ]


# --- sizes -------------------------------------------------------------------------------------

MATCH_SECONDS = 7200.0
MATCH_BYTES = 4_000_000_000  # seed 000: "4GB, 2 hours"
SHORT_SECONDS = 120.0
SHORT_BYTES = 60_000_000  # seed 000: "60MB, 2 min"


def fixed(media_seconds: float, size_bytes: int) -> Sizer:
    return lambda rng: (media_seconds, size_bytes)


def mixed_matches(rng: random.Random) -> tuple[float, int]:
    """Seed 000's "mixed sizes": mostly full matches (2-4 GB, 80-120 min), some highlights."""
    if rng.random() < 0.7:
        secs = rng.uniform(80, 120) * 60
        return secs, int(secs * rng.uniform(2.8e9, 4.4e9) / MATCH_SECONDS)
    secs = rng.uniform(5, 30) * 60
    return secs, int(secs * 0.5e6)


def clips(rng: random.Random) -> tuple[float, int]:
    """Seed 002's clip jobs: source videos of a few minutes to half an hour."""
    secs = rng.uniform(3, 30) * 60
    return secs, int(secs * 0.6e6)


def long_sources(rng: random.Random) -> tuple[float, int]:
    """Seed 002's long sources (podcasts, streams cut into clips): 20 minutes to 2 hours."""
    secs = rng.uniform(20, 120) * 60
    return secs, int(secs * 0.6e6)


def solver_runs(rng: random.Random) -> tuple[float, int]:
    """Seed 003: solver runs of one to four hours, tiny inputs."""
    return rng.uniform(1, 4) * 3600, 50_000


# --- generators ---------------------------------------------------------------------------------


def at_once(
    n: int, sizer: Sizer, rng: random.Random, t: float = 0.0, kind: str = "transcode"
) -> list[JobSpec]:
    return sort_jobs(JobSpec("", t, *sizer(rng), kind) for _ in range(n))


def every(n: int, gap: float, sizer: Sizer, rng: random.Random, kind: str = "transcode") -> list[JobSpec]:
    return sort_jobs(JobSpec("", i * gap, *sizer(rng), kind) for i in range(n))


def poisson(
    rate_per_hour: float, duration: float, sizer: Sizer, rng: random.Random, kind: str = "transcode"
) -> list[JobSpec]:
    """Arrivals with exponential gaps; `rate_per_hour` uploads on average."""
    if rate_per_hour <= 0 or duration <= 0:
        raise TraceError("a Poisson workload needs a positive rate and duration")
    out: list[JobSpec] = []
    t = rng.expovariate(rate_per_hour / 3600.0)
    while t < duration:
        out.append(JobSpec("", t, *sizer(rng), kind))
        t += rng.expovariate(rate_per_hour / 3600.0)
    return sort_jobs(out)


def bursts(
    times: Sequence[float],
    per_burst: int,
    spread: float,
    sizer: Sizer,
    rng: random.Random,
    kind: str = "transcode",
) -> list[JobSpec]:
    """`per_burst` uploads within `spread` seconds after each of `times` (seed 002's queue floods)."""
    return sort_jobs(
        JobSpec("", t + rng.uniform(0, spread), *sizer(rng), kind) for t in times for _ in range(per_burst)
    )


def weekly(
    total: int,
    weeks: float,
    weights: Sequence[float],
    sizer: Sizer,
    rng: random.Random,
    kind: str = "transcode",
) -> list[JobSpec]:
    """`total` arrivals over `weeks`, placed by an hour-of-week weight profile (168 weights, or 7 per day)."""
    if len(weights) not in (7, 168) or sum(weights) <= 0:
        raise TraceError("a weekly pattern needs 7 (per day) or 168 (per hour) non-negative weights")
    hourly = [w for w in weights for _ in range(24)] if len(weights) == 7 else list(weights)
    span_hours = int(weeks * 168)
    slots = [h for h in range(span_hours)]
    chosen = rng.choices(slots, weights=[hourly[h % 168] for h in slots], k=total)
    return sort_jobs(JobSpec("", h * 3600 + rng.uniform(0, 3600), *sizer(rng), kind) for h in chosen)


def weekend_afternoons() -> list[float]:
    """Rugby: matches end on Saturday and Sunday afternoons; a trickle on weekdays."""
    w = [0.05] * 168
    for day in (5, 6):  # Saturday, Sunday (the trace starts on a Monday)
        for hour in range(13, 20):
            w[day * 24 + hour] = 1.0
    return w
