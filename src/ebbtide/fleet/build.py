"""Wire a controller from the settings and open services (what `ebbtide scaler`/`up` run)."""

from __future__ import annotations

from ebbtide.fleet.controller import Controller
from ebbtide.fleet.policies import policy_for
from ebbtide.fleet.ports import QueueSource, WorkerSource
from ebbtide.fleet.providers import Provider, provider_for
from ebbtide.fleet.sources import CatalogFleetState, CatalogQueueSource, DepthQueueSource
from ebbtide.services import Services


def build_controller(
    services: Services, config_path: str | None = None, providers: dict[str, Provider] | None = None
) -> Controller:
    s = services.settings
    fleet = s.fleet
    chosen = dict(providers or {})
    for pool in fleet.pools:
        if pool.name not in chosen:
            chosen[pool.name] = provider_for(pool, s, services.clock, config_path=config_path)
    state = CatalogFleetState(services.catalog, tuple(p.name for p in fleet.pools))
    workers: WorkerSource = state
    foreign = [p for p in fleet.pools if p.workers == "foreign"]
    if foreign:  # the user's own workers: health and busy-ness read from their queue
        from ebbtide.fleet.foreign import open_probe, static_worker_names
        from ebbtide.fleet.foreign.source import ForeignWorkerSource

        probes = {p.name: open_probe(p, s, services.clock) for p in foreign}
        from ebbtide.fleet.foreign.sqs import SqsBusyProbe, guard_provider

        for p in foreign:  # SQS pools: scale-in protection as configured
            probe = probes[p.name]
            if isinstance(probe, SqsBusyProbe):
                chosen[p.name] = guard_provider(p, chosen[p.name], probe, services.clock)
        static = {p.name: static_worker_names(p) for p in foreign if p.provider == "static"}
        workers = ForeignWorkerSource(state, probes, services.clock, sightings=state, static_names=static)
    source: QueueSource
    if fleet.depth_source:  # workers ebbtide does not run: scale on their queue, read only
        from ebbtide.queue.depth import open_depth_source

        depth = open_depth_source(fleet.depth_source, services.clock, s.aws.region, s.aws.endpoint_url)
        source = DepthQueueSource(depth, services.clock)
    else:
        source = CatalogQueueSource(
            services.queue, services.catalog, services.clock,
            resend_after=services.settings.queue.resend_after,
            silent_timeout=services.settings.worker.silent_timeout,
        )  # fmt: skip
    return Controller(
        fleet.pools,
        chosen,
        policy_for(fleet.policy),
        source,
        workers,
        state,
        services.clock,
        launch_budget=fleet.launch_budget,
        interval=fleet.interval,
        policy_name=fleet.policy.kind,
        idle_grace=fleet.drain_idle_after,
    )
