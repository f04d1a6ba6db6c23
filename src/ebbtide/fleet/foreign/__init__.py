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


__all__ = ["BusyEvidence", "BusyProbe", "ForeignView", "ProbeResult", "open_probe"]
