"""The hardware a simulation runs on: pools plus what only a simulator needs to know of them.

Speed follows the config: `speed` is media seconds transcoded per wall-clock second, so a job's
transcode time is `media_seconds / speed`; download and upload time come from the pool's
bandwidth (input size, and the output ladder's size from its bitrates).

Figures are the seeds': g4dn.xlarge at $0.526/h on-demand and $0.158/h spot, ~5-8x realtime
(a 2-hour match in ~25 min: 2 min download, 20 transcode, 3 upload), ~2.5 min cold start
(90 s instance + 30 s task + pull), quotas of 1 on-demand and 2 spot (seed 001); the Jetson
edge box finishes a 2-hour match in ~35 min (seed 000).
"""

from __future__ import annotations

from dataclasses import dataclass

from ebbtide.config import PoolConfig, Settings
from ebbtide.errors import ConfigError
from ebbtide.sim.workloads import JobSpec


@dataclass(frozen=True)
class SimPool:
    config: PoolConfig
    bandwidth: float = 50e6  # bytes/s, each way
    boot_jitter: float = 0.2  # ± fraction of boot_time
    interruptions_per_hour: float = 0.0  # spot reclaims (each with a 2-minute notice)
    shortage: float = 0.0  # probability that one spot launch finds no capacity
    single_run: bool = False  # one task per job (seed 003): the worker exits after its job

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def paid(self) -> bool:
        return self.config.price_per_hour > 0 and self.config.provider != "static"


@dataclass(frozen=True)
class SimFleet:
    name: str
    pools: tuple[SimPool, ...]
    note: str = ""

    def pool(self, name: str) -> SimPool:
        for p in self.pools:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def cheapest_paid(self) -> SimPool | None:
        paid = [p for p in self.pools if p.paid]
        return min(paid, key=lambda p: p.config.price_per_hour) if paid else None


def _pool(**kw: object) -> PoolConfig:
    return PoolConfig.model_validate(kw)


SEED_000 = SimFleet(
    "seed-000",
    (
        SimPool(_pool(name="edge", provider="static", min=1, max=1, speed=4.5, boot_time=0), bandwidth=40e6),
        SimPool(
            _pool(
                name="gpu-od", provider="asg", max=1, quota=1, price_per_hour=0.526, speed=6.0, boot_time=150
            ),
        ),
        SimPool(
            _pool(
                name="gpu-spot",
                provider="asg",
                max=2,
                quota=2,
                spot=True,
                price_per_hour=0.158,
                speed=6.0,
                boot_time=150,
            ),
            interruptions_per_hour=0.002,
            shortage=0.05,
        ),
    ),
    "Jetson edge box (free) + 1 on-demand and 2 spot g4dn.xlarge (seeds 000/001)",
)

SEED_002 = SimFleet(
    "seed-002",
    (
        SimPool(
            _pool(name="primary", provider="static", min=1, max=1, speed=1.5, boot_time=0), bandwidth=60e6
        ),
        SimPool(
            _pool(
                name="c6i-spot",
                provider="ec2",
                max=2,
                quota=2,
                spot=True,
                price_per_hour=0.068,
                speed=3.0,
                boot_time=60,
            ),
            bandwidth=60e6,
            interruptions_per_hour=0.002,
            shortage=0.05,
        ),
    ),
    "always-on t3.large primary (sunk cost, counted free) + up to 2 c6i.xlarge spot (seed 002)",
)

SEED_003 = SimFleet(
    "seed-003",
    (
        SimPool(
            _pool(name="fargate", provider="ecs-task", max=10, price_per_hour=0.233, speed=1.0, boot_time=60),
            single_run=True,
        ),
    ),
    "ECS Fargate tasks (4 vCPU, 16 GB at $0.233/h), one task per solver run (seed 003)",
)

FLEETS = {f.name: f for f in (SEED_000, SEED_002, SEED_003)}


def fleet_from_settings(settings: Settings, name: str = "config") -> SimFleet:
    """A fleet from an ebbtide.yaml: pool options may carry `bandwidth_mbps`, `interruptions_per_hour`,
    `spot_shortage` and `single_run` for the simulator; everything else comes from the pool config."""
    pools: list[SimPool] = []
    for p in settings.fleet.pools:
        o = p.options
        try:
            pools.append(
                SimPool(
                    p,
                    bandwidth=float(o.get("bandwidth_mbps", 400)) * 1e6 / 8,  # type: ignore[arg-type]
                    interruptions_per_hour=float(o.get("interruptions_per_hour", 0.0)),  # type: ignore[arg-type]
                    shortage=float(o.get("spot_shortage", 0.0)),  # type: ignore[arg-type]
                    single_run=bool(o.get("single_run", p.provider == "ecs-task")),
                )
            )
        except (TypeError, ValueError) as e:
            raise ConfigError(
                f"fleet.pools[{p.name}].options: simulator options must be numbers ({e})",
                hint="bandwidth_mbps: 400, interruptions_per_hour: 0.002, spot_shortage: 0.05",
            ) from None
    if not pools:
        raise ConfigError("the config names no pools to simulate", hint="add fleet.pools")
    return SimFleet(name, tuple(pools), "pools from the config")


def job_seconds(spec: JobSpec, pool: SimPool, out_bps: float | None = None) -> float:
    """Wall seconds of one job on one pool: download + media ÷ speed + upload of the ladder, plus a
    chunk's start-up overhead (a chunk's `size_bytes` is only its range)."""
    if not spec.kind.startswith("transcode"):
        return spec.media_seconds / pool.config.speed
    bps = _OUT_BPS if out_bps is None else out_bps
    io = (spec.size_bytes + spec.media_seconds * bps) / pool.bandwidth
    return spec.overhead + io + spec.media_seconds / pool.config.speed


def ladder_bytes_per_second(settings: Settings | None = None) -> float:
    """Output bytes per media second: the sum of the ladder's bitrates plus audio per rung."""
    s = settings or Settings()
    kbps = sum(r.bitrate_kbps + s.media.audio_bitrate_kbps for r in s.media.rungs)
    return kbps * 1000 / 8


_OUT_BPS = ladder_bytes_per_second()
