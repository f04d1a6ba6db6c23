"""The seeds' scenarios, built in: a workload plus the fleet the seed ran it on."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from ebbtide.errors import ConfigError
from ebbtide.sim import workloads as wl
from ebbtide.sim.fleets import SEED_000, SEED_002, SEED_003, SimFleet
from ebbtide.sim.workloads import DAY, MATCH_BYTES, MATCH_SECONDS, SHORT_BYTES, SHORT_SECONDS, JobSpec

MATCH = wl.fixed(MATCH_SECONDS, MATCH_BYTES)


@dataclass(frozen=True)
class Scenario:
    name: str
    note: str
    fleet: SimFleet
    build: Callable[[random.Random], list[JobSpec]]

    def jobs(self, seed: int) -> list[JobSpec]:
        return self.build(random.Random(f"{self.name}:{seed}"))


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "single-short",
            "seed 000 scenario 1: one 60 MB, 2-minute video",
            SEED_000,
            lambda r: wl.at_once(1, wl.fixed(SHORT_SECONDS, SHORT_BYTES), r),
        ),
        Scenario(
            "single-long",
            "seed 000 scenario 2: one 4 GB, 2-hour match",
            SEED_000,
            lambda r: wl.at_once(1, MATCH, r),
        ),
        Scenario(
            "three-matches",
            "seed 000 scenario 3: three 2-hour matches at once",
            SEED_000,
            lambda r: wl.at_once(3, MATCH, r),
        ),
        Scenario(
            "six-matches",
            "seed 000 scenario 4: six 2-hour matches at once",
            SEED_000,
            lambda r: wl.at_once(6, MATCH, r),
        ),
        Scenario(
            "twelve-hourly",
            "seed 000 table: twelve 2-hour matches, one per hour",
            SEED_000,
            lambda r: wl.every(12, 3600, MATCH, r),
        ),
        Scenario(
            "month-50",
            "seed 000 monthly estimate: 50 matches a month, mixed sizes, weekends",
            SEED_000,
            lambda r: wl.weekly(50, 30 / 7, wl.weekend_afternoons(), wl.mixed_matches, r),
        ),
        Scenario(
            "clip-bursts",
            "seed 002: bursts of clip jobs on an always-on primary, spot overflow",
            SEED_002,
            lambda r: wl.bursts([3600, 6 * 3600, DAY + 2 * 3600], 20, 600, wl.clips, r),
        ),
        Scenario(
            "long-sources",
            "seed 002: bursts of 20 long sources (20 min-2 h): jobs still run when nothing waits",
            SEED_002,
            lambda r: wl.bursts([3600, 6 * 3600, DAY + 2 * 3600], 20, 600, wl.long_sources, r),
        ),
        Scenario(
            "solver-month",
            "seed 003: 100 solver runs a month, 1-4 h each, one task per job",
            SEED_003,
            lambda r: wl.poisson(100 / 30 / 24, 30 * DAY, wl.solver_runs, r, kind="command"),
        ),
    )
}

# seed 000's scenario set (its scenarios and cost table, seed 001's fleet)
SEED_000_SET = ("single-short", "single-long", "three-matches", "six-matches", "twelve-hourly", "month-50")


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ConfigError(f"unknown scenario {name!r}", hint="scenarios: " + ", ".join(SCENARIOS)) from None
