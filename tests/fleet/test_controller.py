"""The controller's own rules, whatever the policy says.

The ports are in-memory fakes (allowed here: this is the pure decision core; see fleet_fakes.py).
"""

from __future__ import annotations

from collections.abc import Collection

from fleet_fakes import FakeProvider, Rig

from ebbtide.catalog.states import WorkerState
from ebbtide.clock import VirtualClock
from ebbtide.config.sections import (
    DeadlinePolicyConfig,
    PoolConfig,
    StepPolicyConfig,
    StepRule,
    TargetPolicyConfig,
)
from ebbtide.fleet.causes import Cause, Note
from ebbtide.fleet.model import Decision, Observation, PoolDecision
from ebbtide.fleet.policies import policy_for
from ebbtide.fleet.providers.base import Instance

W = WorkerState
POOL = PoolConfig(name="cloud", provider="ec2", max=3, price_per_hour=0.5, boot_time=60, boot_timeout=300)


def fixed(n: int):  # type: ignore[no-untyped-def]
    def policy(obs: Observation) -> Decision:
        return Decision(tuple(PoolDecision(p.name, n, f"fixed {n}", Cause.BACKLOG) for p in obs.pools),
                        obs.memory)

    return policy


def test_busy_worker_is_never_retired_only_drained() -> None:
    rig = Rig([POOL], fixed(3))
    rig.tick()
    rig.workers.boot_all()
    ids = [w.id for w in rig.workers.in_pool("cloud")]
    rig.workers.report(ids[0], W.BUSY, job_id="j1")
    rig.policy = fixed(0)
    rig.controller.policy = fixed(0)
    for _ in range(5):
        rig.tick()
    fake = rig.fakes["cloud"]
    busy_instance = rig.workers.rows[ids[0]].provider_id
    assert busy_instance not in fake.retired
    assert len(fake.retired) == 2  # the two idle ones went
    assert rig.workers.rows[ids[0]].drain is True
    assert rig.workers.rows[ids[0]].state == W.BUSY


def test_count_based_pool_lowers_its_count_instead_of_draining() -> None:
    """ECS-service-like pools cannot stop one named task. The controller lowers the count (the
    service then stops unprotected, i.e. idle, tasks) and drains nobody: a drained task that exits
    would only be replaced by the service, and a busy one is protected until it is idle."""
    rig = Rig([POOL], fixed(2))
    rig.fakes["cloud"].retires_specific = False
    rig.tick()
    rig.workers.boot_all()
    ids = [w.id for w in rig.workers.in_pool("cloud")]
    rig.workers.report(ids[0], W.BUSY, job_id="j1")
    rig.controller.policy = fixed(0)
    rig.tick()
    assert rig.fakes["cloud"].retired == [rig.workers.rows[ids[1]].provider_id]
    assert not any(w.drain for w in rig.workers.in_pool("cloud"))
    rig.workers.report(ids[0], W.IDLE)
    rig.tick()
    assert rig.workers.rows[ids[0]].provider_id in rig.fakes["cloud"].retired


class ProtectingProvider(FakeProvider):
    """An ASG-like fake: the platform may pick victims, so busy instances carry protection."""

    def __init__(self, pool: str, clock: VirtualClock) -> None:
        super().__init__(pool, clock)
        self.syncs: list[set[str]] = []

    def sync_protection(self, busy: Collection[str]) -> None:
        self.syncs.append(set(busy))


def test_busy_instances_are_protected_and_idle_ones_released_every_tick() -> None:
    rig = Rig([POOL], fixed(2))
    fake = ProtectingProvider("cloud", rig.clock)
    rig.providers["cloud"] = rig.fakes["cloud"] = fake
    rig.controller = rig.new_controller()
    rig.tick()
    rig.workers.boot_all()
    ids = [w.id for w in rig.workers.in_pool("cloud")]
    rig.workers.report(ids[0], W.BUSY, job_id="j1")
    rig.tick()
    assert fake.syncs[-1] == {rig.workers.rows[ids[0]].provider_id}
    rig.workers.report(ids[0], W.IDLE)
    rig.tick()
    assert fake.syncs[-1] == set()


def test_max_holds_with_a_thousand_queued_jobs() -> None:
    big = PoolConfig(name="cloud", provider="ec2", max=3, price_per_hour=0.5)
    for cfg in (DeadlinePolicyConfig(), TargetPolicyConfig(scale_out_cooldown=0),
                StepPolicyConfig(steps=(StepRule(at_least=1, capacity=50),), cooldown=0)):
        rig = Rig([big], policy_for(cfg))
        rig.queue.set(visible=1000, waiting_work_seconds=1000 * 600.0)
        for _ in range(20):
            assert rig.tick()["cloud"] <= 3
            rig.workers.boot_all()
        assert rig.count("cloud") == 3
        assert sum(rig.fakes["cloud"].launch_calls) == 3


def test_quota_caps_below_max() -> None:
    quota = PoolConfig(name="cloud", provider="ec2", max=10, quota=2, price_per_hour=0.5)
    rig = Rig([quota], fixed(10))
    for _ in range(5):
        assert rig.tick()["cloud"] == 2
    assert rig.count("cloud") == 2


def test_launch_budget_caps_a_tick() -> None:
    wide = PoolConfig(name="cloud", provider="ec2", max=10, price_per_hour=0.5)
    rig = Rig([wide], fixed(10), launch_budget=3)
    rig.tick()
    assert rig.fakes["cloud"].launch_calls == [3]
    rig.tick()
    rig.tick()
    rig.tick()
    assert rig.fakes["cloud"].launch_calls == [3, 3, 3, 1]
    assert any(Note.DEFERRED_BUDGET in r["notes"] for r in rig.recorder.rows)


def test_min_holds_and_static_pool_is_never_launched() -> None:
    edge = PoolConfig(name="edge", provider="static", max=1)
    base = PoolConfig(name="cloud", provider="ec2", min=1, max=3, price_per_hour=0.5)
    rig = Rig([edge, base], fixed(0))
    d = rig.tick()
    assert d["cloud"] == 1 and rig.count("cloud") == 1
    assert "edge" not in rig.fakes


def test_idle_grace_keeps_a_fresh_idle_worker() -> None:
    rig = Rig([POOL], fixed(1), idle_grace=60)
    rig.tick()
    rig.workers.boot_all()
    rig.controller.policy = fixed(0)
    idle_from = rig.clock.now()
    retired_after = None
    for _ in range(14):  # 70 s
        t = rig.clock.now() - idle_from
        assert rig.tick()["cloud"] == 0
        if retired_after is None and rig.fakes["cloud"].retired:
            retired_after = t
    assert retired_after is not None and 60 <= retired_after < 65
    assert any(Note.IDLE_GRACE in r["notes"] for r in rig.recorder.rows)


def test_restart_adopts_running_instances_without_relaunching() -> None:
    rig = Rig([POOL], fixed(2))
    rig.tick()
    rig.workers.boot_all()
    assert len(rig.fakes["cloud"].launch_calls) == 1
    # a new controller with an empty catalog: the instances are found by tag and adopted
    rig.workers.rows.clear()
    rig.controller = rig.new_controller()
    d = rig.tick()
    assert d["cloud"] == 2
    assert len(rig.fakes["cloud"].launch_calls) == 1
    assert {w.provider_id for w in rig.workers.in_pool("cloud")} == set(rig.fakes["cloud"].instances)


def test_vanished_instance_is_marked_gone_and_replaced() -> None:
    rig = Rig([POOL], fixed(1))
    rig.tick()
    rig.workers.boot_all()
    rig.fakes["cloud"].instances.clear()  # spot interruption: the instance is gone
    for _ in range(3):
        rig.tick()
    assert len(rig.fakes["cloud"].launch_calls) == 2
    assert rig.count("cloud") == 1


def test_boot_timeout_reaps_workers_that_never_report() -> None:
    """Seed 002's "health check before counting it": an instance that never reports is terminated."""
    rig = Rig([POOL], fixed(1))
    rig.tick()
    first = next(iter(rig.fakes["cloud"].instances))
    for _ in range(60):  # 300 s, never reports
        rig.tick()
    rig.tick()
    assert first in rig.fakes["cloud"].retired
    assert any(Note.REAP_UNHEALTHY in r["notes"] for r in rig.recorder.rows)
    assert len(rig.fakes["cloud"].launch_calls) == 2  # and a replacement was launched


def test_adopted_instance_matches_worker_reporting_under_its_own_id() -> None:
    """A worker that reports by pid under its own id replaces the controller's placeholder."""
    rig = Rig([POOL], fixed(1))
    fake = rig.fakes["cloud"]
    fake.instances["i-9"] = Instance("i-9", "cloud", rig.clock.now(), worker_id="w-planned", pid=4242)
    rig.tick()
    rig.workers.add("w-own", "cloud", W.IDLE, pid=4242)
    rig.tick()
    live = [w.id for w in rig.workers.in_pool("cloud") if w.live]
    assert live == ["w-own"]
    assert fake.launch_calls == []


def test_decisions_are_recorded_with_reasons_on_change() -> None:
    rig = Rig([POOL], fixed(1))
    for _ in range(5):
        rig.tick()
    rows = [r for r in rig.recorder.rows if r["pool"] == "cloud"]
    assert rows[0]["launched"] == 1 and rows[0]["cause"] == Cause.BACKLOG
    assert rig.recorder.records[0].notes == ((Note.LAUNCH, 1),)
    assert rows[0]["reason"] == "backlog; fixed 1; launched 1"  # rendered from the record
    assert len(rows) == 2  # the launch, then the steady state; unchanged ticks are not re-recorded
    assert rows[1]["launched"] == 0 and rows[1]["running"] == 1
