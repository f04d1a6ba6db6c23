"""Each policy shows the seed behaviour it models, driven through the real controller.

The ports are in-memory fakes (allowed here: this is the pure decision core; see fleet_fakes.py).
"""

from __future__ import annotations

from fleet_fakes import Rig

from ebbtide.catalog.states import WorkerState
from ebbtide.config.sections import (
    DeadlinePolicyConfig,
    PoolConfig,
    StepPolicyConfig,
    StepRule,
    SustainedPolicyConfig,
    TargetPolicyConfig,
)
from ebbtide.fleet.causes import Cause, Note
from ebbtide.fleet.policies import policy_for

W = WorkerState
JETSON = PoolConfig(name="edge", provider="static", max=1, price_per_hour=0.0)
ASG = PoolConfig(name="gpu", provider="asg", max=3, price_per_hour=0.526, boot_time=120)
SEED000_STEPS = StepPolicyConfig(steps=(StepRule(at_least=1, capacity=1), StepRule(at_least=2, capacity=2)),
                                 scale_in_after=600, cooldown=0)


def test_step_table_tops_out_at_two_with_max_three() -> None:
    """Seed 000 issue 3: 1 → 1, 2+ → 2, so the third worker never spins up although max is 3."""
    rig = Rig([ASG], policy_for(SEED000_STEPS))
    rig.queue.set(visible=6)
    assert rig.tick()["gpu"] == 2
    rig.workers.boot_all()
    assert rig.tick()["gpu"] == 2
    assert rig.count("gpu") == 2
    # the recommended table (3+ → 3) reaches the group's max
    steps = (*SEED000_STEPS.steps, StepRule(at_least=3, capacity=3))
    fixed = SEED000_STEPS.model_copy(update={"steps": steps})
    rig2 = Rig([ASG], policy_for(fixed))
    rig2.queue.set(visible=6)
    assert rig2.tick()["gpu"] == 3


def test_step_scales_to_zero_only_after_queue_empty_for_scale_in_after() -> None:
    rig = Rig([ASG], policy_for(SEED000_STEPS))
    rig.queue.set(visible=1)
    rig.tick()
    rig.workers.boot_all()
    rig.queue.set(visible=0)
    empty_from = rig.clock.now()
    out = []
    for _ in range(130):
        out.append((rig.clock.now() - empty_from, rig.tick()["gpu"]))
    assert all(d == 1 for t, d in out if t < 600)
    assert all(d == 0 for t, d in out if t >= 600)
    assert rig.fakes["gpu"].retired  # the idle instance was terminated
    assert rig.count("gpu") == 0


def test_step_jetson_idle_takes_the_single_job() -> None:
    """Seed 000 scenario 1: one short video, the Jetson takes it, AWS never scales up."""
    rig = Rig([JETSON, ASG], policy_for(SEED000_STEPS))
    rig.workers.add("jetson", "edge", W.IDLE)
    rig.queue.set(visible=1)
    assert rig.tick()["gpu"] == 0
    assert rig.fakes["gpu"].launch_calls == []


def test_target_tracking_scales_in_while_jobs_are_in_flight_but_never_kills_them() -> None:
    """Seed 000 issue 2: visible=0 while tasks work, scale-in cooldown expires → ECS asks for 0.

    ebbtide's policy reproduces the seed's decision; the controller only drains the busy workers.
    """
    cfg = TargetPolicyConfig(target_per_worker=1, scale_out_cooldown=60, scale_in_cooldown=300)
    rig = Rig([ASG], policy_for(cfg))
    rig.queue.set(visible=2)
    assert rig.tick()["gpu"] == 2
    for w in rig.workers.in_pool("gpu"):
        rig.workers.report(w.id, W.BUSY, job_id=f"job-{w.id}")
    rig.queue.set(visible=0, in_flight=2)
    seen = []
    for _ in range(70):  # 350 s
        seen.append(rig.tick()["gpu"])
    assert seen[0] == 2  # held by the scale-in cooldown
    assert 0 in seen  # after 300 s the policy scales in with 2 jobs still in flight
    assert seen.index(0) * 5 >= 295
    assert rig.fakes["gpu"].retired == []  # never retired a busy worker
    assert all(w.drain for w in rig.workers.in_pool("gpu"))  # asked to finish and leave
    assert any(r["cause"] == Cause.SCALE_IN for r in rig.recorder.rows)


def test_target_scale_out_cooldown_holds() -> None:
    cfg = TargetPolicyConfig(target_per_worker=1, scale_out_cooldown=60, scale_in_cooldown=300)
    rig = Rig([ASG], policy_for(cfg))
    rig.queue.set(visible=1)
    assert rig.tick()["gpu"] == 1
    rig.queue.set(visible=3)
    for _ in range(11):  # 5..55 s after the scale-out
        assert rig.tick()["gpu"] == 1
    assert rig.tick()["gpu"] == 3  # 60 s after
    assert rig.fakes["gpu"].launch_calls == [1, 2]


def test_sustained_waits_out_hold_then_caps_and_goes_to_zero() -> None:
    """Seed 002: ≥5 for 5 min → 1 spot, ≥15 for 5 min → 2, 0 for 10 min → terminate, hard cap 2."""
    primary = PoolConfig(name="primary", provider="static", max=1)
    spot = PoolConfig(name="spot", provider="ec2", max=5, price_per_hour=0.05, spot=True)
    rig = Rig([primary, spot], policy_for(SustainedPolicyConfig()))
    rig.workers.add("primary-1", "primary", W.BUSY, job_id="j0")
    rig.queue.set(visible=6)
    for _ in range(60):  # 0..295 s: the threshold has not held for 5 min yet
        assert rig.tick()["spot"] == 0
    assert rig.tick()["spot"] == 1
    rig.queue.set(visible=100)
    for _ in range(60):
        assert rig.tick()["spot"] == 1
    assert rig.tick()["spot"] == 2
    for _ in range(20):
        assert rig.tick()["spot"] == 2  # hard cap although the pool allows 5
    rig.workers.boot_all()
    rig.queue.set(visible=0)
    out = [rig.tick()["spot"] for _ in range(121)]
    assert out[0] == 2 and out[-1] == 0
    assert out.index(0) * 5 >= 600


SPOT = PoolConfig(name="spot", provider="ec2", max=2, price_per_hour=0.158, boot_time=90, spot=True)
ONDEMAND = PoolConfig(name="ondemand", provider="ec2", max=1, price_per_hour=0.526, boot_time=90)
DEADLINE = DeadlinePolicyConfig(target_ready=1800, default_job_seconds=600)


def test_deadline_static_box_takes_work_before_any_paid_launch() -> None:
    """Seed 000 scenario 1: a 2-minute video on the idle Jetson costs $0."""
    rig = Rig([JETSON, SPOT, ONDEMAND], policy_for(DEADLINE))
    rig.workers.add("jetson", "edge", W.IDLE)
    rig.queue.set(visible=1, waiting_work_seconds=120)
    for _ in range(10):
        d = rig.tick()
        assert d["spot"] == 0 and d["ondemand"] == 0
    assert rig.fakes["spot"].launch_calls == [] and rig.fakes["ondemand"].launch_calls == []


def test_deadline_launches_paid_only_for_what_free_pools_cannot_finish_cheapest_first() -> None:
    """Seed 000 scenario 3: three 2-hour videos (20-35 min each on a T4); the Jetson alone is too slow."""
    rig = Rig([JETSON, ONDEMAND, SPOT], policy_for(DEADLINE))
    rig.workers.add("jetson", "edge", W.BUSY, job_id="j1", job_work_seconds=7200)
    rig.workers.speed = {"edge": 4.0, "spot": 5.0, "ondemand": 5.0}
    rig.queue.set(visible=2, in_flight=1, waiting_work_seconds=2 * 7200, running_work_seconds=7200)
    d = rig.tick()
    assert d["spot"] == 2  # cheapest first (config order puts on-demand earlier)
    assert d["ondemand"] == 0


def test_deadline_spot_shortage_falls_back_to_on_demand() -> None:
    rig = Rig([JETSON, SPOT, ONDEMAND], policy_for(DEADLINE))
    rig.workers.speed = {"spot": 5.0, "ondemand": 5.0}
    rig.fakes["spot"].available = 0
    rig.queue.set(visible=3, waiting_work_seconds=3 * 7200)
    d = rig.tick()
    # the shortfall went to on-demand in the same tick
    assert rig.fakes["ondemand"].launch_calls == [1]
    assert d["ondemand"] == 1
    assert any(Note.LAUNCH_SHORT in r["notes"] for r in rig.recorder.rows if r["pool"] == "spot")
    assert any(Note.FALLBACK in r["notes"] for r in rig.recorder.rows if r["pool"] == "ondemand")
    # next ticks: the policy itself skips the failed pool and does not hammer it
    rig.tick()
    assert rig.fakes["spot"].launch_calls == [2]


def test_deadline_keeps_an_idle_paid_worker_warm_only_when_the_next_job_is_near() -> None:
    rig = Rig([SPOT], policy_for(DEADLINE))
    rig.workers.add("s1", "spot", W.IDLE)
    rig.queue.set(visible=0, arrival_rate=1 / 30)  # a job every 30 s: cheaper to wait than boot
    assert rig.tick()["spot"] == 1
    rig.queue.set(arrival_rate=1 / 3600)  # one an hour: retire it
    assert rig.tick()["spot"] == 0
    assert rig.fakes["spot"].retired == [] and rig.count("spot") == 0  # not a provider instance: drained


def _matches(rig: Rig, n: int, age: float = 0.0) -> None:
    rig.workers.speed = {"edge": 4.5, "spot": 6.0, "ondemand": 6.0}
    rig.queue.set(visible=n, waiting_work_seconds=n * 7200.0, oldest_age=age)


def test_deadline_buys_a_premium_worker_only_when_the_waiting_it_saves_is_worth_its_price() -> None:
    """Seed 000 scenario 4's burst with the Jetson busy: five matches waiting, two spot workers at
    most. Whether the on-demand worker ($0.53/h) is bought is the user's stated trade-off: at
    $10 per hour of waiting it saves more than it costs; at $0.10 it does not, and the jobs wait.
    Spot is bought either way (it saves hours of waiting for cents)."""
    for value, want_od in ((10.0, 1), (0.1, 0)):
        cfg = DeadlinePolicyConfig(target_ready=1800, default_job_seconds=600, wait_value_per_hour=value)
        rig = Rig([JETSON, ONDEMAND, SPOT], policy_for(cfg))
        rig.workers.add("jetson", "edge", W.BUSY, job_id="j1", job_work_seconds=7200)
        _matches(rig, 5)
        d = rig.tick()
        assert (d["spot"], d["ondemand"]) == (2, want_od), value
        want_cause = Cause.OUT_OF_REACH  # five matches cannot all be ready in 30 min either way
        assert {r["cause"] for r in rig.recorder.rows if r["pool"] != "edge"} == {want_cause}
        for _ in range(40):  # 200 s: workers boot; the decision holds
            rig.workers.boot_all()
            assert rig.tick()["ondemand"] == want_od
        assert sum(rig.fakes["ondemand"].launch_calls) == want_od


def test_deadline_keeps_the_target_with_free_capacity_alone_when_it_can() -> None:
    rig = Rig([JETSON, ONDEMAND, SPOT], policy_for(DEADLINE))
    rig.workers.add("jetson", "edge", W.IDLE)
    _matches(rig, 1)
    rig.queue.set(waiting_work_seconds=3600.0)  # a 1-hour match: 13 min on the Jetson
    rig.tick()
    assert {r["cause"] for r in rig.recorder.rows if r["pool"] != "edge"} == {Cause.FREE_CAPACITY}


def test_deadline_out_of_reach_still_falls_back_when_spot_launches_fail() -> None:
    rig = Rig([JETSON, ONDEMAND, SPOT], policy_for(DEADLINE))
    rig.fakes["spot"].available = 0
    _matches(rig, 6)
    rig.tick()
    rig.tick()
    assert rig.fakes["ondemand"].launch_calls == [1]  # the shortfall went to on-demand
    assert rig.fakes["spot"].launch_calls == [2]  # and the failed pool is not hammered


def test_deadline_leaves_queued_work_to_cheaper_capacity() -> None:
    """An idle on-demand worker is let go while a spot one covers the backlog; a busy on-demand
    worker about to finish is asked to drain (it finishes its job and takes no other), never killed."""
    rig = Rig([JETSON, ONDEMAND, SPOT], policy_for(DEADLINE))
    rig.workers.speed = {"edge": 4.5, "spot": 6.0, "ondemand": 6.0}
    rig.workers.add("od", "ondemand", W.IDLE, provider_id="i-od")
    rig.workers.add("s1", "spot", W.IDLE, provider_id="i-s1")
    rig.queue.set(visible=1, waiting_work_seconds=7200)
    d = rig.tick()
    assert (d["spot"], d["ondemand"]) == (1, 0)
    rig2 = Rig([JETSON, ONDEMAND, SPOT], policy_for(DEADLINE))
    rig2.workers.speed = {"edge": 4.5, "spot": 6.0, "ondemand": 6.0}
    rig2.workers.add("od", "ondemand", W.BUSY, job_id="j1", job_work_seconds=7200, progress=0.95)
    rig2.workers.add("s1", "spot", W.BUSY, job_id="j2", job_work_seconds=7200, progress=0.95)
    rig2.queue.set(visible=1, in_flight=2, waiting_work_seconds=7200)
    d = rig2.tick()
    assert (d["spot"], d["ondemand"]) == (1, 0)
    od = rig2.workers.rows["od"]
    assert od.drain and od.state == W.BUSY and rig2.fakes["ondemand"].retired == []
    assert not rig2.workers.rows["s1"].drain
    # more work arrives: the drained worker is cheaper to keep than a launch, so it is taken back
    rig2.queue.set(visible=3, waiting_work_seconds=3 * 7200)
    rig2.tick()
    assert not rig2.workers.rows["od"].drain


def test_deadline_counts_a_chunked_upload_late_once_not_once_per_part() -> None:
    """Issue 11: a 3-hour source split into 4 parts of 45 min, waiting 15 min already, the Jetson
    idle, spot launchable. Seen as four uploads, three parts are late (2700 s in all) and a spot
    worker saves 2310 s of it; seen as the one upload they are (`waiting_uploads=1`), it is late by
    its last part only and a spot worker saves 1200 s. At $0.10 per hour of waiting, the spot
    worker ($0.043: boot and two parts) is worth the first but not the second."""
    cfg = DeadlinePolicyConfig(target_ready=1800, default_job_seconds=600, wait_value_per_hour=0.10)
    bought = {}
    for uploads in (4, 1):
        rig = Rig([JETSON, SPOT], policy_for(cfg))
        rig.workers.add("jetson", "edge", W.IDLE)
        rig.workers.speed = {"edge": 4.5, "spot": 6.0}
        rig.queue.set(visible=4, waiting_work_seconds=4 * 2700.0, oldest_age=900.0, waiting_uploads=uploads)
        bought[uploads] = rig.tick()["spot"]
    assert bought[1] < bought[4], bought
