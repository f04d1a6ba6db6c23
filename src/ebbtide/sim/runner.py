"""Run one workload on one fleet under one or more setups; same seed, same randomness per setup."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ebbtide.sim.aws_scaler import attach_aws
from ebbtide.sim.chunked import ChunkModel
from ebbtide.sim.ebbtide_scaler import attach_controller
from ebbtide.sim.engine import Engine
from ebbtide.sim.fleets import SimFleet
from ebbtide.sim.result import RunResult, measure
from ebbtide.sim.setups import Setup
from ebbtide.sim.workloads import JobSpec


def simulate(
    jobs: Sequence[JobSpec],
    fleet: SimFleet,
    setup: Setup,
    seed: int = 0,
    scenario: str = "trace",
    horizon: float | None = None,
    chunks: ChunkModel | None = None,
) -> RunResult:
    engine = Engine(jobs, fleet, setup, seed=seed, horizon=horizon, chunks=chunks)
    fleet_log = logging.getLogger("ebbtide.fleet")
    saved = fleet_log.level
    fleet_log.setLevel(
        logging.ERROR
    )  # a month holds thousands of decisions and spot shortages; they are in the result
    retired_busy = 0
    try:
        if setup.actuation == "aws":
            aws = attach_aws(engine)
            engine.run()
            decisions = aws.decisions
        else:
            _, sources, providers = attach_controller(engine)
            engine.run()
            decisions = sources.decisions
            retired_busy = sum(p.retired_busy for p in providers.values())
    finally:
        fleet_log.setLevel(saved)
    return measure(engine, scenario, seed, decisions, retired_busy)


def compare(
    jobs: Sequence[JobSpec], fleet: SimFleet, setups: Sequence[Setup], seed: int = 0, scenario: str = "trace"
) -> list[RunResult]:
    return [simulate(jobs, fleet, s, seed=seed, scenario=scenario) for s in setups]
