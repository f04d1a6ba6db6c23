"""Scaling policies: pure functions `Observation -> Decision`, one module each.

`policy_for(cfg)` turns a config section into the function; the controller and the simulator both
call it, so no policy logic lives anywhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ebbtide.config.sections import (
    DeadlinePolicyConfig,
    StepPolicyConfig,
    SustainedPolicyConfig,
    TargetPolicyConfig,
)
from ebbtide.fleet.model import Decision, Observation
from ebbtide.fleet.policies.deadline import decide_deadline
from ebbtide.fleet.policies.step import decide_step
from ebbtide.fleet.policies.sustained import decide_sustained
from ebbtide.fleet.policies.target import decide_target

Policy = Callable[[Observation], Decision]

PolicyConfig = StepPolicyConfig | TargetPolicyConfig | SustainedPolicyConfig | DeadlinePolicyConfig


def policy_for(cfg: PolicyConfig) -> Policy:
    if isinstance(cfg, StepPolicyConfig):
        return partial(decide_step, cfg)
    if isinstance(cfg, TargetPolicyConfig):
        return partial(decide_target, cfg)
    if isinstance(cfg, SustainedPolicyConfig):
        return partial(decide_sustained, cfg)
    return partial(decide_deadline, cfg)


__all__ = ["Policy", "policy_for"]
