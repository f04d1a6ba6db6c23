"""In-memory fakes of the fleet's ports, for the decision-core tests.

Mocks are allowed here (ARCHITECTURE: the decision core is pure and the controller's I/O sits
behind small protocols); the local provider and the end-to-end test use the real processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ebbtide.catalog.states import WorkerState
from ebbtide.clock import VirtualClock
from ebbtide.config.sections import PoolConfig
from ebbtide.fleet.causes import DecisionRecord, render
from ebbtide.fleet.controller import Controller
from ebbtide.fleet.model import QueueView, WorkerView
from ebbtide.fleet.policies import Policy
from ebbtide.fleet.providers.base import Instance, LaunchResult, Provider
from ebbtide.fleet.providers.static import StaticProvider


class FakeQueue:
    def __init__(self) -> None:
        self.view = QueueView()

    def set(self, **kw: Any) -> None:
        self.view = replace(self.view, **kw)

    def observe_queue(self) -> QueueView:
        return self.view


class FakeWorkers:
    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.rows: dict[str, WorkerView] = {}
        self.speed: dict[str, float] = {}

    def workers(self) -> list[WorkerView]:
        return [w for w in self.rows.values() if w.state != WorkerState.GONE]

    def speeds(self) -> dict[str, float]:
        return dict(self.speed)

    def register(self, worker_id: str, pool: str, provider_id: str | None, price_per_hour: float) -> None:
        t = self.clock.now()
        self.rows[worker_id] = WorkerView(worker_id, pool, WorkerState.BOOTING, t, t, provider_id=provider_id)

    def set_drain(self, worker_id: str, drain: bool = True) -> None:
        self.rows[worker_id] = replace(self.rows[worker_id], drain=drain)

    def mark_gone(self, worker_id: str) -> None:
        self.rows[worker_id] = replace(self.rows[worker_id], state=WorkerState.GONE)

    # test helpers: what the workers themselves would report
    def report(self, worker_id: str, state: WorkerState, job_id: str | None = None, **kw: Any) -> None:
        self.rows[worker_id] = replace(self.rows[worker_id], state=state, job_id=job_id,
                                       last_seen=self.clock.now(), **kw)

    def add(
        self, worker_id: str, pool: str, state: WorkerState, job_id: str | None = None, **kw: Any
    ) -> None:
        t = self.clock.now()
        self.rows[worker_id] = WorkerView(worker_id, pool, state, t, t, job_id=job_id, **kw)

    def in_pool(self, pool: str) -> list[WorkerView]:
        return [w for w in self.workers() if w.pool == pool]

    def boot_all(self) -> None:
        for w in self.workers():
            if w.state == WorkerState.BOOTING:
                self.report(w.id, WorkerState.IDLE)


class FakeRecorder:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.records: list[DecisionRecord] = []

    def record(self, rec: DecisionRecord) -> None:
        self.records.append(rec)
        self.rows.append(dict(pool=rec.pool, policy=rec.policy, desired=rec.desired, running=rec.running,
                              busy=rec.busy, launched=rec.launched, retired=rec.retired,
                              reason=render(rec), at=rec.at, cause=rec.cause,
                              notes={n for n, _ in rec.notes}))


class FakeProvider:
    """A cloud-like provider: launches up to `available` (spot shortage), retires by instance id."""

    def __init__(self, pool: str, clock: VirtualClock, retires_specific: bool = True) -> None:
        self.name = "fake"
        self.pool = pool
        self.clock = clock
        self.retires_specific = retires_specific
        self.available: int | None = None
        self.instances: dict[str, Instance] = {}
        self.launch_calls: list[int] = []
        self.retired: list[str] = []
        self._n = 0

    def launch(self, n: int) -> LaunchResult:
        self.launch_calls.append(n)
        k = n if self.available is None else min(n, self.available)
        out = []
        for _ in range(k):
            self._n += 1
            iid = f"{self.pool}-i{self._n}"
            inst = Instance(iid, self.pool, self.clock.now(), worker_id=f"w-{iid}")
            self.instances[iid] = inst
            out.append(inst)
        err = None if k == n else "InsufficientInstanceCapacity: no spot capacity"
        return LaunchResult(n, tuple(out), err)

    def retire(self, ids: Sequence[str]) -> list[str]:
        done = [i for i in ids if i in self.instances]
        for i in done:
            del self.instances[i]
        self.retired.extend(done)
        return done

    def inventory(self) -> list[Instance]:
        return list(self.instances.values())


class Rig:
    """A controller wired to fakes, on a virtual clock."""

    def __init__(self, pools: Sequence[PoolConfig], policy: Policy, launch_budget: int = 4,
                 idle_grace: float = 0.0, policy_name: str = "test") -> None:
        self.clock = VirtualClock()
        self.queue = FakeQueue()
        self.workers = FakeWorkers(self.clock)
        self.recorder = FakeRecorder()
        self.providers: dict[str, Provider] = {}
        self.fakes: dict[str, FakeProvider] = {}
        for p in pools:
            if p.provider == "static":
                self.providers[p.name] = StaticProvider(p.name)
            else:
                fp = FakeProvider(p.name, self.clock)
                self.fakes[p.name] = fp
                self.providers[p.name] = fp
        self.pools = tuple(pools)
        self.policy = policy
        self.launch_budget = launch_budget
        self.idle_grace = idle_grace
        self.controller = self.new_controller(policy_name)

    def new_controller(self, policy_name: str = "test") -> Controller:
        return Controller(self.pools, self.providers, self.policy, self.queue, self.workers, self.recorder,
                          self.clock, launch_budget=self.launch_budget, interval=5.0,
                          policy_name=policy_name, idle_grace=self.idle_grace)

    def tick(self, advance: float = 5.0) -> dict[str, int]:
        decisions = self.controller.tick()
        self.clock.advance(advance)
        return {d.pool: d.desired for d in decisions}

    def count(self, pool: str) -> int:
        return len([w for w in self.workers.in_pool(pool) if w.live])
