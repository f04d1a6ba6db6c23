"""Target tracking on backlog per worker, with scale-out and scale-in cooldowns.

Models seed 000's ECS service policy `rugbycodex-ecs-queue-tracking`: metric
ApproximateNumberOfMessagesVisible, target 1 message per task, scale-out cooldown 60 s, scale-in
cooldown 300 s counted from the last scaling activity. Because the metric ignores in-flight
messages, scale-in asks for less capacity while jobs are still running (the seed's "terminates
working tasks"); the controller turns that into drains, never kills.
"""

from __future__ import annotations

from ebbtide.catalog.states import WorkerState
from ebbtide.config.sections import TargetPolicyConfig
from ebbtide.fleet.causes import Cause
from ebbtide.fleet.model import Decision, Observation
from ebbtide.fleet.policies.common import ceil_div, free_idle, scalable, spread


def decide_target(cfg: TargetPolicyConfig, obs: Observation) -> Decision:
    mem = dict(obs.memory)
    q = obs.queue
    metric = q.visible
    absorbed = free_idle(obs)
    if cfg.metric == "visible_and_in_flight":
        metric += q.in_flight
        absorbed += sum(
            1 for p in obs.pools if p.free for w in p.live if w.busy or w.state == WorkerState.BUSY
        )
    value = max(0, metric - absorbed)
    want = ceil_div(value, cfg.target_per_worker)
    current = sum(p.running for p in scalable(obs))
    last_out: float | None = mem.get("last_scale_out")
    last_in: float | None = mem.get("last_scale_in")
    head = f"target: {cfg.metric}={value} / {cfg.target_per_worker:g} per worker → {want}"
    if want > current:
        if last_out is not None and obs.now - last_out < cfg.scale_out_cooldown:
            want, why = current, f"{head}, scale-out cooldown ({cfg.scale_out_cooldown:g}s) holds {current}"
            cause = Cause.COOLDOWN
        else:
            mem["last_scale_out"] = obs.now
            why, cause = f"{head}, scale out from {current}", Cause.BACKLOG
    elif want < current:
        last_any = max((t for t in (last_out, last_in) if t is not None), default=None)
        if last_any is not None and obs.now - last_any < cfg.scale_in_cooldown:
            want, why = current, f"{head}, scale-in cooldown ({cfg.scale_in_cooldown:g}s) holds {current}"
            cause = Cause.COOLDOWN
        else:
            mem["last_scale_in"] = obs.now
            why, cause = f"{head}, scale in from {current} (in flight: {q.in_flight})", Cause.SCALE_IN
    else:
        why, cause = f"{head}, steady", Cause.STEADY
    return Decision(tuple(spread(obs, want, why, cause)), mem)
