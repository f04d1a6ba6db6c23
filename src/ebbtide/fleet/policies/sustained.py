"""Thresholds that must hold for a while, a hard cap, and zero after an idle spell.

Models seed 002's BullMQ spot scaler: waiting ≥ 5 for 5+ min → 1 spot, ≥ 15 for 5+ min → 2
spots, 0 waiting for 10+ min → terminate all spots, hard cap EC2_SPOT_MAX_COUNT=2. It only ever
launches up to a level (never trims between levels), like the seed's "if activeSpots < N".
"""

from __future__ import annotations

from ebbtide.config.sections import SustainedPolicyConfig
from ebbtide.fleet.causes import Cause
from ebbtide.fleet.model import Decision, Observation
from ebbtide.fleet.policies.common import free_idle, scalable, spread


def decide_sustained(cfg: SustainedPolicyConfig, obs: Observation) -> Decision:
    mem = dict(obs.memory)
    waiting = max(0, obs.queue.visible - free_idle(obs))
    held: dict[str, float] = dict(mem.get("above_since", {}))
    level: int | None = None
    level_at = 0
    for rule in sorted(cfg.thresholds, key=lambda r: r.at_least):
        key = str(rule.at_least)
        if waiting >= rule.at_least:
            since = held.setdefault(key, obs.now)
            if obs.now - since >= cfg.hold:
                level, level_at = rule.workers, rule.at_least
        else:
            held.pop(key, None)
    mem["above_since"] = held
    if obs.queue.visible > 0:
        mem.pop("idle_since", None)
    else:
        mem.setdefault("idle_since", obs.now)
    current = sum(p.running for p in scalable(obs))
    idle_for = obs.now - mem["idle_since"] if "idle_since" in mem else 0.0
    if "idle_since" in mem and idle_for >= cfg.idle_to_zero:
        want, why = 0, f"0 waiting for {idle_for:g}s ≥ {cfg.idle_to_zero:g}s → terminate all"
        cause = Cause.SCALE_TO_ZERO
    elif level is not None and level > current:
        want, cause = level, Cause.BACKLOG
        why = f"{waiting} waiting ≥ {level_at} held {cfg.hold:g}s → {level}"
    else:
        want, why, cause = current, f"{waiting} waiting, holding {current}", Cause.STEADY
    if want > cfg.cap:
        want, why = cfg.cap, f"{why}, hard cap {cfg.cap}"
    return Decision(tuple(spread(obs, want, f"sustained: {why}", cause)), mem)
