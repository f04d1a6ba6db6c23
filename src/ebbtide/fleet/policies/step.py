"""Step scaling: queue depth → exact capacity, and to zero once the queue stayed empty.

Models seed 000/001's Auto Scaling group: the `rugbycodex-step-scale-on-queue-depth` policy
(ExactCapacity steps on ApproximateNumberOfMessagesVisible: 1 → 1, 2+ → 2, so the table tops out
at 2 while the group's max is 3) and the `rugbycodex-scale-to-zero` alarm (queue empty for 10
periods of 60 s → capacity 0). Visible jobs that idle free workers (the seed's Jetson) will take
do not count, as the Jetson's receives hid them from CloudWatch.
"""

from __future__ import annotations

from ebbtide.config.sections import StepPolicyConfig
from ebbtide.fleet.causes import Cause
from ebbtide.fleet.model import Decision, Observation
from ebbtide.fleet.policies.common import free_idle, scalable, spread


def step_capacity(cfg: StepPolicyConfig, depth: int) -> int | None:
    """The capacity of the highest step at or below `depth`; None when no step applies."""
    best: int | None = None
    for rule in sorted(cfg.steps, key=lambda r: r.at_least):
        if depth >= rule.at_least:
            best = rule.capacity
    return best


def decide_step(cfg: StepPolicyConfig, obs: Observation) -> Decision:
    mem = dict(obs.memory)
    visible = obs.queue.visible
    depth = max(0, visible - free_idle(obs))
    current = sum(p.running for p in scalable(obs))
    if visible > 0:
        mem.pop("empty_since", None)
    else:
        mem.setdefault("empty_since", obs.now)
    last = mem.get("last_scale_at")
    step = step_capacity(cfg, depth) if depth > 0 else None
    if step is not None:
        if step != current and last is not None and obs.now - last < cfg.cooldown:
            want, cause = current, Cause.COOLDOWN
            why = f"depth {depth} → step {step}, held by cooldown ({cfg.cooldown:g}s)"
        else:
            want, why = step, f"depth {depth} → exact capacity {step}"
            cause = Cause.BACKLOG if step > current else Cause.SCALE_IN if step < current else Cause.STEADY
    elif visible == 0 and obs.now - mem["empty_since"] >= cfg.scale_in_after:
        want, why = 0, f"queue empty for {obs.now - mem['empty_since']:g}s ≥ {cfg.scale_in_after:g}s → 0"
        cause = Cause.SCALE_TO_ZERO
    else:
        want, why, cause = current, f"depth {depth}: no step applies, holding {current}", Cause.STEADY
    if want != current:
        mem["last_scale_at"] = obs.now
    return Decision(tuple(spread(obs, want, f"step: {why}", cause)), mem)
