"""The chunk planner (`media.chunks.plan_split`): a pure function of the duration, the workers the
policy would use, their speeds and boot times, and the policy's trade-off."""

from __future__ import annotations

import math

from ebbtide.config.sections import DeadlinePolicyConfig, MediaConfig, TargetPolicyConfig
from ebbtide.fleet.split_goal import split_goal
from ebbtide.media.chunks import PoolCapacity, SplitGoal, plan_split

EDGE_SPEED = 4.5
# the seeds' fleet, as a split on the edge box sees it: 1 on-demand and 2 spot g4dn launchable
GPUS = [PoolCapacity(0, 1, 150.0, 6.0, 0.526), PoolCapacity(0, 2, 150.0, 6.0, 0.158)]


def _goal(target: float, value: float, **kw: float) -> SplitGoal:
    policy = DeadlinePolicyConfig(target_ready=target, wait_value_per_hour=value)
    return split_goal(policy, MediaConfig(), kw.pop("age", 0.0), EDGE_SPEED, 0.0)


def test_a_short_clip_is_never_split() -> None:
    for value in (0.0, 1.0, 1e6):
        assert plan_split(40.0, GPUS, _goal(0.0, value)).count == 1
    assert plan_split(239.0, [PoolCapacity(10, 0, 0.0, 1.0)], _goal(0.0, 1e6)).count == 1  # < 2 x 120 s


def test_no_split_for_paid_workers_the_policy_would_not_buy() -> None:
    # the edge makes the 30-min target alone (7200 / 4.5 = 1600 s): nothing paid is planned
    plan = plan_split(7200.0, GPUS, _goal(1800.0, 1.0))
    assert plan.count == 1 and plan.cost == 0.0
    # waiting is worth nothing: never pay, whatever the lateness
    assert plan_split(7200.0, GPUS, _goal(600.0, 0.0)).cost == 0.0


def test_a_speed_setting_buys_the_cheapest_workers_that_keep_the_target() -> None:
    plan = plan_split(7200.0, GPUS, _goal(600.0, 10.0))
    assert plan.count >= 3 and plan.workers >= 3
    assert plan.ready <= 600.0 and 0.0 < plan.cost < 0.1
    # spot before on-demand: at a 12-min target the two spots are enough, the on-demand is not planned
    relaxed = plan_split(7200.0, GPUS, _goal(720.0, 10.0))
    spots_only = plan_split(7200.0, [GPUS[1]], _goal(720.0, 10.0))
    assert relaxed.workers == 3 and relaxed.ready <= 720.0 and relaxed.cost < plan.cost
    assert math.isclose(spots_only.cost, relaxed.cost) and spots_only.ready == relaxed.ready


def test_the_target_counts_from_the_upload_not_the_split() -> None:
    fresh = plan_split(7200.0, GPUS, _goal(1800.0, 1.0))
    old = plan_split(7200.0, GPUS, _goal(1800.0, 1.0, age=600.0))  # waited 10 min in the queue
    assert fresh.count == 1 and old.count > 1 and old.ready <= 1200.0


def test_free_workers_are_always_used_and_a_long_boot_is_not_waited_for() -> None:
    free = [PoolCapacity(3, 0, 0.0, EDGE_SPEED)]
    plan = plan_split(7200.0, free, _goal(1800.0, 1.0))
    assert plan.count >= 4 and plan.cost == 0.0 and plan.ready < 7200.0 / EDGE_SPEED / 3
    slow_boot = [PoolCapacity(0, 3, 3 * 3600.0, 6.0, 0.158)]
    assert plan_split(7200.0, slow_boot, _goal(600.0, 10.0)).count == 1


def test_slow_and_fast_workers_mixed_get_more_chunks_than_workers() -> None:
    mixed = [PoolCapacity(1, 0, 0.0, 18.0)]  # the splitter at 4.5, one idle worker 4x faster
    plan = plan_split(7200.0, mixed, _goal(0.0, 1e6))
    assert plan.count > plan.workers == 2


def test_queue_depth_policies_plan_for_speed() -> None:
    goal = split_goal(TargetPolicyConfig(), MediaConfig(), 0.0, EDGE_SPEED, 0.0)
    assert math.isinf(goal.wait_value_per_hour)
    plan = plan_split(7200.0, GPUS, goal)
    assert plan.workers == 4 and plan.ready < 600.0


def test_the_plan_is_a_pure_function() -> None:
    g = _goal(600.0, 10.0)
    assert plan_split(7200.0, GPUS, g) == plan_split(7200.0, list(GPUS), g)
