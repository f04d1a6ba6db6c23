"""Setups: queue and scaling settings to compare on the same fleet.

Two kinds of actuation:
- `ebbtide`: the real `fleet.controller.Controller` acts (busy workers are never stopped; the
  completion ledger skips a job that already finished).
- `aws`: AWS acts on the real policies' decisions the way the seeds' services do — metrics in 60 s
  periods, an Auto Scaling group sized by one policy (`hosts`) and an ECS service sized by another
  (`tasks`), and scale-in that stops *any* instance or task, busy or not. The decision is still
  the fleet policy's; only the acting is AWS's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from ebbtide.config import Settings
from ebbtide.config.sections import (
    DeadlinePolicyConfig,
    StepPolicyConfig,
    StepRule,
    SustainedPolicyConfig,
    TargetPolicyConfig,
)
from ebbtide.errors import ConfigError

PolicyCfg = StepPolicyConfig | TargetPolicyConfig | SustainedPolicyConfig | DeadlinePolicyConfig


@dataclass(frozen=True)
class Setup:
    name: str
    note: str
    lease: float  # visibility timeout, seconds
    wait: float  # long-poll wait; 0 = short polling
    max_receives: int
    heartbeat: bool  # the worker extends its lease while it works
    policy: PolicyCfg  # ebbtide: the policy; aws: the ECS service's (tasks) policy
    actuation: Literal["ebbtide", "aws"] = "ebbtide"
    interval: float = 5.0  # controller tick, or the CloudWatch period
    hosts: PolicyCfg | None = None  # aws: the Auto Scaling group's own policy (None: one layer)
    ledger: bool = True  # idempotent completion: a finished job's redelivery is skipped
    launch_budget: int = 4
    drain_idle_after: float = 60.0
    short_poll_gap: float = 1.0  # a short-polling worker's sleep between empty receives
    protect_busy: bool = False  # aws: ECS task and ASG instance scale-in protection on busy ones
    spot_first: bool = False  # aws: the group launches spot before on-demand
    foreign_workers: bool = False  # ebbtide: the user's own workers (cannot be asked to drain)
    extra: dict[str, float] = field(default_factory=dict)


def _steps(*pairs: tuple[int, int]) -> tuple[StepRule, ...]:
    return tuple(StepRule(at_least=a, capacity=c) for a, c in pairs)


SEED_ORIGINAL = Setup(
    name="seed-original",
    note="seed 000 'actual': 10-min visibility, no heartbeat, short polling, ECS target 1 with "
    "5-min scale-in cooldown (stops busy tasks), ASG steps 1→1, 2+→2, zero after 10 empty minutes",
    lease=600,
    wait=0,
    max_receives=3,
    heartbeat=False,
    ledger=False,
    actuation="aws",
    interval=60,
    policy=TargetPolicyConfig(
        target_per_worker=1.0, metric="visible", scale_out_cooldown=60, scale_in_cooldown=300
    ),
    hosts=StepPolicyConfig(steps=_steps((1, 1), (2, 2)), scale_in_after=600, cooldown=300),
)

SEED_RECOMMENDED = Setup(
    name="seed-recommended",
    note="seed 000 'recommended': 20-min visibility, 20 s long polling, ECS scale-in cooldown 25 min, "
    "ASG steps to 3, zero after 25 empty minutes; still no heartbeat",
    lease=1200,
    wait=20,
    max_receives=3,
    heartbeat=False,
    ledger=False,
    actuation="aws",
    interval=60,
    policy=TargetPolicyConfig(
        target_per_worker=1.0, metric="visible", scale_out_cooldown=60, scale_in_cooldown=1500
    ),
    hosts=StepPolicyConfig(steps=_steps((1, 1), (2, 2), (3, 3)), scale_in_after=1500, cooldown=300),
)

SEED_002 = Setup(
    name="seed-002-thresholds",
    note="seed 002: every 60 s, ≥5 waiting for 5 min → 1 spot, ≥15 → 2, 0 waiting for 10 min → "
    "terminate all spots (busy or not); BullMQ-style lock renewal",
    lease=600,
    wait=20,
    max_receives=3,
    heartbeat=True,
    ledger=False,
    actuation="aws",
    interval=60,
    policy=SustainedPolicyConfig.model_validate({}),
)

# The strongest baseline: seed-recommended with its one costly setting fixed (a visibility timeout
# longer than any full job, instead of 20 minutes shorter than every full match) and busy tasks
# and instances protected from scale-in, as ECS task protection and ASG instance protection do.
SEED_FIXED = replace(
    SEED_RECOMMENDED,
    name="seed-fixed",
    note="seed-recommended fixed: 1-h visibility (longer than any full match), ECS task and ASG "
    "instance scale-in protection on busy ones; long polling, 25-min cooldowns",
    lease=3600,
    protect_busy=True,
)

SEED_FIXED_SPOT = replace(
    SEED_FIXED,
    name="seed-fixed-spot",
    note="seed-fixed, spot launched before on-demand, seed 001's short tails (5-min ECS scale-in "
    "cooldown, zero after 10 empty minutes)",
    spot_first=True,
    policy=TargetPolicyConfig(
        target_per_worker=1.0, metric="visible", scale_out_cooldown=60, scale_in_cooldown=300
    ),
    hosts=StepPolicyConfig(steps=_steps((1, 1), (2, 2), (3, 3)), scale_in_after=600, cooldown=300),
)

# Seed 002's thresholds on the same foreign pool, acted by ebbtide (docs/foreign-pools.md): the
# workers are the user's BullMQ workers, so a busy one cannot be drained; it is retired once idle.
SEED_002_EBBTIDE = replace(
    SEED_002,
    name="seed-002-ebbtide",
    note="seed 002's thresholds and cadence, acted by ebbtide on the foreign pool: a spot whose "
    "worker holds a job is never terminated, it is retired once idle",
    actuation="ebbtide",
    foreign_workers=True,
)

_EBBTIDE_NOTE = (
    "deadline policy (30 min free, ${v:g} per hour of waiting beyond), 2-min lease with "
    "heartbeat, 20 s long polling, busy-safe scale-in, completion ledger"
)


def ebbtide_setup(name: str = "ebbtide", **policy: object) -> Setup:
    """ebbtide's defaults, with deadline policy settings changed (the cost/wait trade-off)."""
    s = Settings()
    cfg = DeadlinePolicyConfig.model_validate(policy)
    return Setup(
        name=name,
        note=_EBBTIDE_NOTE.format(v=cfg.wait_value_per_hour),
        lease=s.queue.lease,
        wait=s.queue.wait,
        max_receives=s.queue.max_receives,
        heartbeat=True,
        policy=cfg,
        interval=s.fleet.interval,
        launch_budget=s.fleet.launch_budget,
        drain_idle_after=s.fleet.drain_idle_after,
    )


EBBTIDE = ebbtide_setup()
EBBTIDE_THRIFTY = ebbtide_setup("ebbtide-thrifty", wait_value_per_hour=0.2)
EBBTIDE_FOREIGN = replace(
    ebbtide_setup("ebbtide-foreign"),
    note="ebbtide's deadline policy on seed 002's foreign BullMQ pool: its lock renewal (30 s), no "
    "completion ledger, busy spots never terminated",
    lease=30,
    ledger=False,
    foreign_workers=True,
)

_ALL = (SEED_ORIGINAL, SEED_RECOMMENDED, SEED_FIXED, SEED_FIXED_SPOT, SEED_002, EBBTIDE, EBBTIDE_THRIFTY,
        SEED_002_EBBTIDE, EBBTIDE_FOREIGN)
SETUPS = {s.name: s for s in _ALL}
# the baselines every comparison shows by default, strongest last
BASELINES = ("seed-fixed", "seed-fixed-spot", "seed-002-thresholds")


def setup_from_settings(settings: Settings, name: str = "config") -> Setup:
    """A setup from an ebbtide.yaml: the real controller with its policy and queue settings."""
    return Setup(
        name=name,
        note=f"{settings.fleet.policy.kind} policy from the config",
        lease=settings.queue.lease,  # what the worker asks on each receive
        wait=settings.queue.wait,
        max_receives=settings.queue.max_receives,
        heartbeat=settings.worker.heartbeat,
        policy=settings.fleet.policy,
        interval=settings.fleet.interval,
        launch_budget=settings.fleet.launch_budget,
        drain_idle_after=settings.fleet.drain_idle_after,
    )


def get_setup(name: str) -> Setup:
    """A built-in setup, or `ebbtide@KEY=VALUE` for ebbtide with one deadline setting changed
    (e.g. `ebbtide@wait_value_per_hour=0.5`)."""
    if name.startswith("ebbtide@"):
        key, _, value = name.removeprefix("ebbtide@").partition("=")
        try:
            return ebbtide_setup(name, **{key: value})
        except ValueError as e:
            raise ConfigError(
                f"bad setup {name!r}: {e}".splitlines()[0],
                hint="e.g. ebbtide@wait_value_per_hour=0.5 or ebbtide@target_ready=1h",
            ) from None
    try:
        return SETUPS[name]
    except KeyError:
        raise ConfigError(
            f"unknown setup {name!r}", hint="setups: " + ", ".join(SETUPS) + ", ebbtide@KEY=VALUE, "
            "or pass --config FILE"
        ) from None
