"""AWS's own actuation of the real fleet policies, as the seeds configured it.

Each CloudWatch period (the setup's interval, 60 s) the policies see the queue and the capacity
and return their decision (the real `policy_for(cfg)` functions); AWS then acts as it does:

- the Auto Scaling group (`setup.hosts`) sets desired instances per pool; a spot launch that finds
  no capacity is retried next period (no on-demand fallback: OnDemandPercentageAboveBase 0);
  scale-in terminates any instance, its task with it, busy or not;
- the ECS service (`setup.policy`) sets desired tasks; a task needs a booted instance with no task
  (one GPU each), starts `TASK_START` s after placement; scale-in stops any task, busy or not;
- with one layer (`hosts` None: seed 002's script) the policy sizes instances directly and its
  scale-in terminates any of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from ebbtide.catalog.states import WorkerState
from ebbtide.fleet.model import Observation, PoolView, WorkerView
from ebbtide.fleet.policies import policy_for
from ebbtide.sim import world as W
from ebbtide.sim.engine import CALL, Engine
from ebbtide.sim.fleets import SimPool

T = TypeVar("T")
TASK_START = 30.0  # ECS places and starts a task on a booted instance (seed 001: ~30 s)


class AwsScaler:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        setup = engine.setup
        self.tasks_policy = policy_for(setup.policy)
        self.hosts_policy = policy_for(setup.hosts) if setup.hosts is not None else None
        self.tasks_mem: Mapping[str, Any] = {}
        self.hosts_mem: Mapping[str, Any] = {}
        self.decisions: list[tuple[float, str, int, str]] = []
        self.paid = [p for p in engine.fleet.pools if p.config.provider != "static"]

    # --- observation -------------------------------------------------------------------------------
    def _static_views(self) -> list[PoolView]:
        e = self.engine
        return [
            PoolView(p.config, tuple(e.worker_view(w) for w in e.live.values() if w.pool == p.name))
            for p in e.fleet.pools
            if p.config.provider == "static"
        ]

    def _host_views(self) -> list[PoolView]:
        e = self.engine
        views = []
        for p in self.paid:
            ws = []
            for inst in e.live_instances.values():
                if inst.pool != p.name:
                    continue
                task = e.workers.get(inst.worker_id or "")
                if inst.ready_at is None:
                    state = WorkerState.BOOTING
                elif task is not None and task.attempt is not None:
                    state = WorkerState.BUSY
                else:
                    state = WorkerState.IDLE
                ws.append(
                    WorkerView(
                        inst.id,
                        p.name,
                        state,
                        inst.launched_at,
                        e.now,
                        job_id=task.attempt.job_id if task and task.attempt else None,
                    )
                )
            views.append(PoolView(p.config, tuple(ws)))
        return views

    def _task_views(self) -> list[PoolView]:
        e = self.engine
        return [
            PoolView(p.config, tuple(e.worker_view(w) for w in e.live.values() if w.pool == p.name))
            for p in self.paid
        ]

    def _obs(self, views: list[PoolView], memory: Mapping[str, Any]) -> Observation:
        e = self.engine
        order = {p.name: i for i, p in enumerate(e.fleet.pools)}
        if e.setup.spot_first:  # the group's allocation puts spot capacity first
            order = {p.name: (not p.config.spot, i) for i, p in enumerate(e.fleet.pools)}  # type: ignore[misc]
        pools = tuple(sorted(self._static_views() + views, key=lambda v: order[v.name]))
        return Observation(e.now, e.queue_view(), pools, e.speeds(), memory)

    # --- one period --------------------------------------------------------------------------------
    def tick(self) -> None:
        if self.hosts_policy is None:
            self._single_layer()
        else:
            self._two_layers()

    def _single_layer(self) -> None:
        obs = self._obs(self._task_views(), self.tasks_mem)
        dec = self.tasks_policy(obs)
        self.tasks_mem = dec.memory
        for p in self.paid:
            want = dec.desired(p.name)
            self._record(p.name, want, dec)
            live = [w for w in self.engine.live.values() if w.pool == p.name]
            if want > len(live):
                self._launch(p, want - len(live), with_task=True)
            elif want < len(live):
                for w in self._victims(live, len(live) - want):
                    self.engine.stop_worker(w, outcome=W.KILLED)

    def _two_layers(self) -> None:
        e = self.engine
        assert self.hosts_policy is not None
        hdec = self.hosts_policy(self._obs(self._host_views(), self.hosts_mem))
        self.hosts_mem = hdec.memory
        for p in self.paid:
            want = hdec.desired(p.name)
            self._record(p.name, want, hdec)
            live = [i for i in e.live_instances.values() if i.pool == p.name]
            if want > len(live):
                self._launch(p, want - len(live), with_task=False)
            elif want < len(live):
                for inst in self._victims(live, len(live) - want):
                    self._terminate(inst)
        tdec = self.tasks_policy(self._obs(self._task_views(), self.tasks_mem))
        self.tasks_mem = tdec.memory
        want_tasks = sum(tdec.desired(p.name) for p in self.paid)
        tasks = [w for w in e.live.values() if e.fleet.pool(w.pool).config.provider != "static"]
        if want_tasks < len(tasks):
            for w in self._victims(tasks, len(tasks) - want_tasks):
                e.stop_worker(w, outcome=W.KILLED, end_instance=False)
        elif want_tasks > len(tasks):
            free = [
                i
                for i in e.live_instances.values()
                if i.ready_at is not None and i.worker_id is None and i.price_per_hour > 0
            ]
            for inst in free[: want_tasks - len(tasks)]:
                e.start_worker(e.fleet.pool(inst.pool), boot=TASK_START, instance=inst)

    def _victims(self, items: list[T], n: int) -> list[T]:
        """What scale-in stops: any n at random, or with scale-in protection only idle ones."""
        e = self.engine
        if e.setup.protect_busy:
            items = [x for x in items if not self._busy(x)]
        return e.rng.sample(items, min(n, len(items)))

    def _busy(self, x: object) -> bool:
        e = self.engine
        if isinstance(x, W.Worker):
            return x.attempt is not None
        assert isinstance(x, W.Instance)
        task = e.workers.get(x.worker_id or "")
        return task is not None and task.attempt is not None

    def _launch(self, pool: SimPool, n: int, with_task: bool) -> None:
        e = self.engine
        cap = pool.config.max if pool.config.quota is None else min(pool.config.max, pool.config.quota)
        alive = sum(1 for i in e.live_instances.values() if i.pool == pool.name)
        for _ in range(max(0, min(n, cap - alive))):
            if pool.config.spot and e.rng.random() < pool.shortage:
                return  # the group retries next period
            if with_task:
                e.start_worker(pool)
                continue
            inst = W.Instance(f"i-{e.new_id():06d}", pool.name, pool.config.price_per_hour, e.now)
            e.instances[inst.id] = inst
            e.live_instances[inst.id] = inst
            e.paid_live += inst.price_per_hour > 0
            boot = max(0.0, pool.config.boot_time - TASK_START)
            boot *= 1 + e.rng.uniform(-pool.boot_jitter, pool.boot_jitter)
            e.push(e.now + boot, CALL, lambda inst=inst: self._instance_ready(inst))

    def _instance_ready(self, inst: W.Instance) -> None:
        if inst.ended_at is None:
            inst.ready_at = self.engine.now

    def _terminate(self, inst: W.Instance) -> None:
        e = self.engine
        w = e.workers.get(inst.worker_id or "")
        if w is not None:
            e.stop_worker(w, outcome=W.KILLED)
        e.end_instance(inst)

    def _record(self, pool: str, desired: int, dec: Any) -> None:
        reason = next((d.reason for d in dec.pools if d.pool == pool), "")
        last = next((d for d in reversed(self.decisions) if d[1] == pool), None)
        if last is None or last[2] != desired:
            self.decisions.append((self.engine.now, pool, desired, reason))


def attach_aws(engine: Engine) -> AwsScaler:
    scaler = AwsScaler(engine)
    engine.tick_fn = scaler.tick
    return scaler
