"""`ForeignWorkerSource`: the controller's `WorkerSource` for pools with foreign workers.

It wraps the fleet's own worker bookkeeping (the catalog's worker rows: launched and adopted
instances, registered by the controller as usual) and, for each foreign pool, replaces what a
heartbeat would have said by what the pool's `BusyProbe` reads from the queue:

- a worker that has never connected is `booting` (the pool's boot timeout reaps it);
- a connected one is `busy` or `idle`, seen now; when its busy-ness cannot be known it is busy
  while the queue has anything in flight (ebbtide scales in only when nothing is);
- one that connected before and is gone from the queue keeps its last state and last-seen time,
  so the pool's hung timeout reaps it — unless it still holds a job lock (then it is busy, seen).

The decision per worker is the pure `foreign_worker`; a sighting is written back to the catalog
(`Sightings.observed`) so `status`, the dashboard and a restarted scaler see it too. A drain
request cannot reach a foreign worker: it is ignored, so a busy worker stays counted and is retired
by the controller once it is idle.

A static foreign pool (always-on machines, seed 002's primary) has no instances to list: its
workers are the names given in `options.worker_names` (each matched as an instance id is), and
each one connected is reported as one live worker `<pool>-<name>`, so the policies count it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from ebbtide.catalog.states import WorkerState
from ebbtide.clock import Clock
from ebbtide.fleet.foreign.base import BusyEvidence, BusyProbe, ForeignView, ProbeResult
from ebbtide.fleet.model import WorkerView
from ebbtide.fleet.ports import WorkerSource
from ebbtide.fleet.providers.base import Instance

log = logging.getLogger("ebbtide.fleet.foreign")

RESIGHT_EVERY = 30.0  # seconds between catalog writes for a worker whose state has not changed


class Sightings(Protocol):
    def observed(self, worker_id: str, pool: str, state: WorkerState, provider_id: str | None) -> None:
        """Record that a foreign worker was seen in this state now (its heartbeat, written for it)."""
        ...


def foreign_worker(w: WorkerView, seen: ForeignView, in_flight: int | None, now: float) -> WorkerView:
    """What the controller should believe about one foreign worker (pure).

    `in_flight` None: the probe failed, nothing is known; the worker is held busy (never retired)
    with its last-seen time unchanged."""
    state: WorkerState
    if in_flight is None:
        state = WorkerState.BUSY if w.state in (WorkerState.IDLE, WorkerState.BUSY) else w.state
        return replace(w, state=state)
    busy = seen.busy if seen.busy is not None else in_flight > 0
    if seen.connected or seen.busy:  # connected, or holding a live lock: alive now
        return replace(w, state=WorkerState.BUSY if busy else WorkerState.IDLE, last_seen=now,
                       job_id=None, drain=False)
    if w.state == WorkerState.BOOTING:
        return w  # never connected yet
    # connected before, not now: silence (the hung timeout reaps it); never idle while in doubt
    state = WorkerState.BUSY if busy and w.state == WorkerState.IDLE else w.state
    return replace(w, state=state, drain=False)


class ForeignWorkerSource:
    """`WorkerSource` over `inner` whose foreign pools' workers are read through their probes."""

    def __init__(
        self, inner: WorkerSource, probes: Mapping[str, BusyProbe], clock: Clock,
        sightings: Sightings | None = None, static_names: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.inner, self.probes, self.clock, self.sightings = inner, dict(probes), clock, sightings
        self.static_names = {k: tuple(v) for k, v in (static_names or {}).items()}
        self.last: dict[str, ProbeResult] = {}  # per pool, for status and tests
        self._written: dict[str, tuple[WorkerState, float]] = {}

    def workers(self) -> list[WorkerView]:
        now = self.clock.now()
        everyone = self.inner.workers()
        out = [w for w in everyone if w.pool not in self.probes]
        for pool, probe in self.probes.items():
            if pool in self.static_names:
                out += self._static(pool, probe, now)
                continue
            mine = [w for w in everyone if w.pool == pool and w.state != WorkerState.GONE]
            instances = [Instance(w.provider_id, pool, w.started_at, worker_id=w.id)
                         for w in mine if w.provider_id]
            result: ProbeResult | None
            try:
                result = probe.probe(instances)
            except Exception as e:  # the queue is down: hold every worker as it was, retire nothing
                log.warning("foreign probe failed; holding the pool's workers as busy",
                            extra={"pool": pool, "error": f"{e.__class__.__name__}: {e}"[:300]})
                result = None
            else:
                self.last[pool] = result
            for w in mine:
                if not w.provider_id:
                    out.append(w)
                    continue
                if result is None:
                    out.append(foreign_worker(w, ForeignView(w.provider_id, False, None,
                                                             BusyEvidence.UNKNOWN), None, now))
                    continue
                v = foreign_worker(w, result.view(w.provider_id), result.in_flight, now)
                self._sighted(v, now)
                out.append(v)
        return out

    def _static(self, pool: str, probe: BusyProbe, now: float) -> list[WorkerView]:
        """Always-on foreign workers: one live view per connected name; silent ones are left out."""
        names = self.static_names[pool]
        try:
            result = probe.probe([Instance(n, pool, 0.0) for n in names])
        except Exception as e:
            err = f"{e.__class__.__name__}: {e}"[:300]
            log.warning("foreign probe failed", extra={"pool": pool, "error": err})
            return []
        self.last[pool] = result
        out: list[WorkerView] = []
        for name in names:
            seen = result.view(name)
            if not (seen.connected or seen.busy):
                continue
            me = WorkerView(f"{pool}-{name}", pool, WorkerState.IDLE, now, now, provider_id=name)
            w = foreign_worker(me, seen, result.in_flight, now)
            self._sighted(w, now)
            out.append(w)
        return out

    def _sighted(self, w: WorkerView, now: float) -> None:
        alive = w.last_seen == now and w.state in (WorkerState.IDLE, WorkerState.BUSY)
        if self.sightings is None or not alive:
            return
        prev = self._written.get(w.id)
        if prev is not None and prev[0] == w.state and now - prev[1] < RESIGHT_EVERY:
            return
        try:
            self.sightings.observed(w.id, w.pool, w.state, w.provider_id)
        except Exception:
            log.exception("could not record a foreign worker's sighting")
            return
        self._written[w.id] = (w.state, now)

    def speeds(self) -> dict[str, float]:
        return self.inner.speeds()

    def register(self, worker_id: str, pool: str, provider_id: str | None, price_per_hour: float) -> None:
        self.inner.register(worker_id, pool, provider_id, price_per_hour)

    def set_drain(self, worker_id: str, drain: bool = True) -> None:
        if any(w.id == worker_id and w.pool in self.probes for w in self.inner.workers()):
            return  # a foreign worker cannot be asked to drain; the controller retires it once idle
        self.inner.set_drain(worker_id, drain)

    def mark_gone(self, worker_id: str) -> None:
        self._written.pop(worker_id, None)
        self.inner.mark_gone(worker_id)

    def close(self) -> None:
        for probe in self.probes.values():
            probe.close()
