"""Prometheus `/metrics`: read from the queue and catalog at scrape time, so every replica agrees.

A custom collector (no counters kept in this process): what Prometheus scrapes is the shared state
— queue depth, in flight, dead, workers per pool and state, jobs by outcome, transcode speed, cost.
"""

from __future__ import annotations

import hmac
import logging
import statistics
from collections import Counter
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ebbtide.catalog.states import JobState, WorkerState
from ebbtide.fleet.snapshot import latest_decisions
from ebbtide.services import Services

log = logging.getLogger(__name__)

router = APIRouter(tags=["metrics"])


class EbbtideCollector(Collector):
    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[GaugeMetricFamily]:
        s = self.services
        stats = s.queue.stats()
        for name, value, doc in (
            ("ebbtide_queue_visible", stats.visible, "Messages waiting to be leased"),
            ("ebbtide_queue_in_flight", stats.in_flight, "Messages leased by a worker"),
            ("ebbtide_queue_delayed", stats.delayed, "Messages waiting out a retry delay"),
            ("ebbtide_queue_dead", stats.dead, "Dead letters"),
            ("ebbtide_queue_oldest_age_seconds", stats.oldest_age or 0.0, "Oldest visible message age"),
        ):
            yield GaugeMetricFamily(name, doc, value=value)

        workers = GaugeMetricFamily("ebbtide_workers", "Workers by pool and state", labels=["pool", "state"])
        counts = Counter((w.pool, str(w.state)) for w in s.catalog.list_workers())
        pools = {p.name for p in s.settings.fleet.pools} | {pool for pool, _ in counts}
        for pool in sorted(pools):
            for wstate in WorkerState:
                if wstate != WorkerState.GONE:
                    workers.add_metric([pool, str(wstate)], counts.get((pool, str(wstate)), 0))
        yield workers

        jobs = GaugeMetricFamily("ebbtide_jobs", "Jobs by state (outcome)", labels=["state"])
        by_state = s.catalog.job_counts()
        for state in JobState:
            jobs.add_metric([str(state)], by_state.get(state, 0))
        yield jobs

        speed = GaugeMetricFamily(
            "ebbtide_transcode_speed", "Median media seconds per wall second, recent jobs", labels=["pool"]
        )
        for pool in sorted(pools):
            recent = s.catalog.recent_speeds(pool=pool)
            if recent:
                speed.add_metric([pool], statistics.median(recent))
        yield speed

        failing = GaugeMetricFamily(
            "ebbtide_pool_provider_error", "1 while the pool's provider is failing (it backs off)",
            labels=["pool"],
        )
        latest = latest_decisions(s.catalog)
        for pool in sorted(pools):
            d = latest.get(pool)
            failing.add_metric([pool], 1.0 if d is not None and d.error else 0.0)
        yield failing

        cost = GaugeMetricFamily("ebbtide_cost_dollars", "Dollars spent on workers so far", labels=["pool"])
        for pool, dollars in sorted(s.catalog.cost_so_far().items()):
            cost.add_metric([pool], dollars)
        yield cost


def registry_for(services: Services) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(EbbtideCollector(services))
    return reg


def _check_token(request: Request, services: Services) -> None:
    """With web.metrics_token set, the scraper must send it as a bearer token (compared in constant time)."""
    expected = services.settings.web.metrics_token
    if not expected:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        from ebbtide.web.auth import Unauthorized

        raise Unauthorized(
            "/metrics wants the metrics token", hint="send Authorization: Bearer <web.metrics_token>"
        )


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    _check_token(request, request.app.state.services)
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
