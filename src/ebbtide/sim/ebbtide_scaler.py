"""Plug the real `fleet.controller.Controller` into the simulated world.

The controller gets in-memory ports (queue source, worker source, decision recorder) and one
simulated `Provider` per pool: boot delay with seeded jitter, spot shortage, quotas. Every
decision is the real controller's; the simulator only answers its questions.
"""

from __future__ import annotations

from collections.abc import Sequence

from ebbtide.catalog.states import WorkerState
from ebbtide.fleet.causes import DecisionRecord, render
from ebbtide.fleet.controller import Controller
from ebbtide.fleet.model import QueueView, WorkerView
from ebbtide.fleet.policies import policy_for
from ebbtide.fleet.providers.base import Instance, LaunchResult, Provider
from ebbtide.sim.engine import Engine
from ebbtide.sim.fleets import SimPool

SHORTAGE = "InsufficientInstanceCapacity: no spot capacity in the requested pools (simulated)"


class SimProvider:
    """A pool's provider in the simulator; implements `fleet.providers.base.Provider`."""

    retires_specific = True

    def __init__(self, engine: Engine, pool: SimPool) -> None:
        self.engine = engine
        self.sim_pool = pool
        self.pool = pool.name
        self.name = pool.config.provider
        self.retired_busy = 0  # a retire that hit a busy worker: would be a controller bug

    def _alive(self) -> list[str]:
        return [w.id for w in self.engine.live.values() if w.pool == self.pool]

    def launch(self, n: int) -> LaunchResult:
        cfg = self.sim_pool.config
        if cfg.provider == "static":
            return LaunchResult(n, (), "a static pool is never launched")
        cap = cfg.max if cfg.quota is None else min(cfg.max, cfg.quota)
        room = max(0, cap - len(self._alive()))
        got: list[Instance] = []
        error = None
        for _ in range(min(n, room)):
            if cfg.spot and self.engine.rng.random() < self.sim_pool.shortage:
                error = SHORTAGE
                break
            w = self.engine.start_worker(self.sim_pool)
            got.append(Instance(w.instance_id, self.pool, self.engine.now, worker_id=w.id, spot=cfg.spot))
        if len(got) < n and error is None:
            error = f"quota: {cap} {self.pool} worker(s) at most (VcpuLimitExceeded, simulated)"
        return LaunchResult(n, tuple(got), error)

    def retire(self, ids: Sequence[str]) -> list[str]:
        done: list[str] = []
        for inst_id in ids:
            inst = self.engine.instances.get(inst_id)
            if inst is None or inst.ended_at is not None:
                continue
            w = self.engine.workers.get(inst.worker_id or "")
            if w is not None:
                if w.attempt is not None:
                    self.retired_busy += 1
                self.engine.stop_worker(w)
            else:
                self.engine.end_instance(inst)
            done.append(inst_id)
        return done

    def inventory(self) -> list[Instance]:
        out = []
        for wid in self._alive():
            w = self.engine.workers[wid]
            out.append(
                Instance(
                    w.instance_id, self.pool, w.started_at, worker_id=w.id, spot=self.sim_pool.config.spot
                )
            )
        return out


class SimSources:
    """QueueSource, WorkerSource and DecisionRecorder over the engine's world."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.decisions: list[tuple[float, str, int, str]] = []
        self.records: list[DecisionRecord] = []

    def observe_queue(self) -> QueueView:
        return self.engine.queue_view()

    def workers(self) -> list[WorkerView]:
        e = self.engine
        return [e.worker_view(w) for w in e.live.values()]

    def speeds(self) -> dict[str, float]:
        return self.engine.speeds()

    def register(self, worker_id: str, pool: str, provider_id: str | None, price_per_hour: float) -> None:
        return None  # the engine created the worker at launch

    def set_drain(self, worker_id: str, drain: bool = True) -> None:
        if self.engine.setup.foreign_workers:
            return  # the user's own workers hear no drain (fleet/foreign/source.py)
        w = self.engine.workers.get(worker_id)
        if w is None or w.state == WorkerState.GONE:
            return
        w.drain = drain
        if drain and w.state == WorkerState.IDLE:
            # a drained idle worker exits at its next poll; its instance stops with it
            self.engine.stop_worker(w)

    def mark_gone(self, worker_id: str) -> None:
        w = self.engine.workers.get(worker_id)
        if w is not None and w.state != WorkerState.GONE:
            self.engine.stop_worker(w)

    def record(self, rec: DecisionRecord) -> None:
        self.records.append(rec)
        self.decisions.append((rec.at, rec.pool, rec.desired, render(rec)))


def attach_controller(engine: Engine) -> tuple[Controller, SimSources, dict[str, SimProvider]]:
    setup = engine.setup
    sources = SimSources(engine)
    providers = {p.name: SimProvider(engine, p) for p in engine.fleet.pools}
    ports: dict[str, Provider] = dict(providers)  # type: ignore[arg-type]
    controller = Controller(
        [p.config for p in engine.fleet.pools],
        ports,
        policy_for(setup.policy),
        sources,
        sources,
        sources,
        engine.clock,
        launch_budget=setup.launch_budget,
        interval=setup.interval,
        policy_name=setup.policy.kind,
        idle_grace=setup.drain_idle_after,
    )
    engine.tick_fn = controller.tick
    engine.quiet_fn = lambda: controller.quiet_until
    engine.controlled = True
    return controller, sources, providers
