"""Foreign pools: workers that are the user's own processes (docs/foreign-pools.md).

`open_probe` picks the pool's `BusyProbe` from the fleet's depth source (the queue those workers
consume) and the pool's provider; one module per backend.
"""

from __future__ import annotations

from urllib.parse import urlparse

from ebbtide.clock import Clock
from ebbtide.config import PoolConfig, Settings
from ebbtide.errors import ConfigError
from ebbtide.fleet.foreign.base import BusyEvidence, BusyProbe, ForeignView, ProbeResult


def static_worker_names(pool: PoolConfig) -> tuple[str, ...]:
    """A static foreign pool's always-on workers: `options.worker_names` (their BullMQ names, or
    the instance ids their names start with)."""
    from ebbtide.fleet.providers.aws import PoolOptions

    names = PoolOptions(pool).strings("worker_names")
    if not names:
        raise ConfigError(
            f"fleet.pools[{pool.name}].options.worker_names is required for a static foreign pool",
            hint='the names its always-on workers give BullMQ, e.g. worker_names: ["i-0primary"]',
        )
    return tuple(names)


def open_probe(pool: PoolConfig, settings: Settings, clock: Clock) -> BusyProbe:
    url = settings.fleet.depth_source or ""
    scheme = urlparse(url).scheme
    if scheme == "bullmq":
        from ebbtide.fleet.foreign.bullmq import BullMQProbe

        return BullMQProbe.from_url(url, pool)
    if scheme == "sqs":
        from ebbtide.fleet.foreign.sqs import open_sqs_probe
        from ebbtide.queue.depth import open_depth_source

        depth = open_depth_source(url, clock, settings.aws.region, settings.aws.endpoint_url)
        return open_sqs_probe(pool, depth, settings, clock)
    raise ConfigError(
        f"pool {pool.name}: no way yet to read foreign workers' busy-ness from {scheme or 'no'} depth source",
        hint="foreign pools are supported on bullmq:// and sqs:// depth sources (docs/foreign-pools.md)",
    )


__all__ = ["BusyEvidence", "BusyProbe", "ForeignView", "ProbeResult", "open_probe", "static_worker_names"]
