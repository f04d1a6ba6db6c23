"""Busy-ness of foreign workers on an SQS queue: an ECS service or an Auto Scaling group (seed 000).

SQS never says which consumer holds which message: `ApproximateNumberOfMessagesNotVisible` is the
queue's aggregate in flight, nothing more. Per worker, only the platform can say more, through
scale-in protection, and what it says depends on who sets it (pool option `protection`):

- `worker` — the user's worker protects its own task (ECS agent endpoint, or UpdateTaskProtection)
  or instance (SetInstanceProtection) while it holds a job: protected = busy, unprotected = idle,
  read with GetTaskProtection / DescribeAutoScalingGroups (while messages are visible, an
  unprotected one may be about to take one: the aggregate decides). ebbtide never writes protection.
- `ebbtide` (default) — the worker knows nothing of protection, so each instance's busy-ness is
  unknown and the aggregate decides (busy while anything is in flight). ebbtide protects every
  running task (UpdateTaskProtection, refreshed before it expires) or instance
  (SetInstanceProtection) while anything is in flight, and releases them when nothing is.
- `off` — unknown, the aggregate decides; ebbtide writes no protection.

The aggregate is in flight plus visible — a visible message may be received by any idle worker
before ECS or the group acts on a lowered count, so a worker is only idle for certain when the
queue holds nothing at all — read as the highest count seen over the last `in_flight_settle`
seconds (pool option, default 60): SQS's approximate counts may take a minute to settle, so one
reading of 0 is not yet proof that nothing is in flight.

Health (`connected`): SQS does not know its consumers, so it comes from the platform — an ECS task
whose lastStatus is RUNNING and whose health check (if the task defines one) is not UNHEALTHY, an
ASG instance InService and Healthy. See docs/foreign-pools.md for what this does and does not
guarantee.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ebbtide.clock import Clock
from ebbtide.config.sections import PoolConfig
from ebbtide.config.settings import Settings
from ebbtide.errors import ConfigError
from ebbtide.fleet.foreign.base import BusyEvidence, ForeignView, ProbeResult
from ebbtide.fleet.providers import aws
from ebbtide.fleet.providers.base import Instance, LaunchResult, Provider
from ebbtide.queue.base import DepthSource

log = logging.getLogger("ebbtide.fleet.foreign")

# Every AWS action the probe and the guard call (besides the pool provider's own and the depth source's).
ACTIONS = ("ecs:DescribeTasks", "ecs:GetTaskProtection", "ecs:UpdateTaskProtection",
           "autoscaling:DescribeAutoScalingGroups", "autoscaling:SetInstanceProtection")
PERMISSIONS = aws.sentence(ACTIONS)
PROTECT_BATCH = 10  # UpdateTaskProtection takes at most 10 tasks
DEFAULT_SETTLE = 60.0
DEFAULT_PROTECT_MINUTES = 30


class Protection(StrEnum):
    """Who sets the pool's scale-in protection (pool option `protection`)."""

    EBBTIDE = "ebbtide"
    WORKER = "worker"
    OFF = "off"


@dataclass(frozen=True)
class PlatformState:
    """What ECS or the Auto Scaling group says about one task or instance."""

    running: bool  # RUNNING / InService, and not failing its health check
    protected: bool | None = None  # scale-in protection on now; None when not read


# pure decisions -----------------------------------------------------------------------------------
def settled_in_flight(readings: Sequence[tuple[float, int]], now: float, settle: float) -> int:
    """The highest in-flight count read within the last `settle` seconds (the latest at least)."""
    if not readings:
        return 0
    recent = [n for t, n in readings if t >= now - settle]
    return max(recent) if recent else readings[-1][1]


def foreign_views(
    instances: Sequence[Instance], platform: Mapping[str, PlatformState], protection: Protection,
    backlog: bool = False,
) -> dict[str, ForeignView]:
    """Each instance as the platform and the protection mode let ebbtide know it.

    `backlog`: messages are (or were, within the settle window) visible. Then an unprotected worker
    is not known idle — it may be taking one right now, before it protects itself — so it is left
    to the aggregate, which counts those messages."""
    out: dict[str, ForeignView] = {}
    for inst in instances:
        st = platform.get(inst.id)
        if aws.is_pending(inst.id) or st is None or not st.running:
            out[inst.id] = ForeignView(inst.id, False, None, BusyEvidence.UNKNOWN)
        elif protection == Protection.WORKER and st.protected:
            out[inst.id] = ForeignView(inst.id, True, True, BusyEvidence.PROTECTED)
        elif protection == Protection.WORKER and st.protected is False and not backlog:
            out[inst.id] = ForeignView(inst.id, True, False, BusyEvidence.UNPROTECTED)
        else:
            out[inst.id] = ForeignView(inst.id, True, None, BusyEvidence.IN_FLIGHT_AGGREGATE)
    return out


def protection_changes(
    want: Collection[str], live: Collection[str], until: Mapping[str, float | None], now: float,
    minutes: int,
) -> tuple[list[str], list[str]]:
    """(protect, release): the live tasks in `want` whose protection is off or past half its life,
    and the live tasks not in `want` whose protection is on."""
    half = minutes * 30.0
    on = sorted(t for t in live if t in want and ((u := until.get(t)) is None or u - now < half))
    off = sorted(t for t in live if t not in want and until.get(t) is not None)
    return on, off


# the platforms ------------------------------------------------------------------------------------
class EcsTasks:
    """An ECS service's tasks: state, health and task scale-in protection."""

    def __init__(self, client: Any, cluster: str) -> None:
        self.client, self.cluster = client, cluster

    def states(self, arns: Sequence[str], with_protection: bool) -> dict[str, PlatformState]:
        from ebbtide.fleet.providers.ecs_service import describe_tasks

        real = [a for a in arns if not aws.is_pending(a)]
        if not real:
            return {}
        tasks = describe_tasks(self.client, self.cluster, real, PERMISSIONS)
        running = {t["taskArn"] for t in tasks
                   if t.get("lastStatus") == "RUNNING" and t.get("healthStatus") != "UNHEALTHY"}
        until = self.protection(sorted(running)) if with_protection else {}
        out = {}
        for t in tasks:
            arn = t["taskArn"]
            prot = (until.get(arn) is not None) if with_protection else None
            out[arn] = PlatformState(arn in running, prot)
        return out

    def protection(self, arns: Sequence[str]) -> dict[str, float | None]:
        """Each task's protection expiry (epoch seconds), None when it is off."""
        out: dict[str, float | None] = {}
        for batch in aws.chunks(list(arns), PROTECT_BATCH):
            resp = aws.call("ecs GetTaskProtection", PERMISSIONS, self.client.get_task_protection,
                            cluster=self.cluster, tasks=batch)
            for t in resp.get("protectedTasks", []):
                exp = t.get("expirationDate")
                out[t["taskArn"]] = (exp.timestamp() if exp is not None else float("inf")) \
                    if t.get("protectionEnabled") else None
        return out

    def set_protection(self, arns: Sequence[str], on: bool, minutes: int) -> list[str]:
        done: list[str] = []
        for batch in aws.chunks(list(arns), PROTECT_BATCH):
            kw: dict[str, Any] = {"expiresInMinutes": minutes} if on else {}
            resp = aws.call("ecs UpdateTaskProtection", PERMISSIONS, self.client.update_task_protection,
                            cluster=self.cluster, tasks=batch, protectionEnabled=on, **kw)
            done += [t["taskArn"] for t in resp.get("protectedTasks", [])]
            for f in resp.get("failures", []):
                log.warning("ecs task protection not set", extra={"task": f.get("arn"), "on": on,
                                                                 "reason": f.get("reason")})
        return done


class AsgInstances:
    """An Auto Scaling group's instances: lifecycle, health and instance scale-in protection."""

    def __init__(self, client: Any, group: str) -> None:
        self.client, self.group = client, group

    def states(self, ids: Sequence[str], with_protection: bool) -> dict[str, PlatformState]:
        resp = aws.call("DescribeAutoScalingGroups", PERMISSIONS, self.client.describe_auto_scaling_groups,
                        AutoScalingGroupNames=[self.group])
        wanted = set(ids)
        out: dict[str, PlatformState] = {}
        for g in resp.get("AutoScalingGroups", []):
            for i in g.get("Instances", []):
                if i["InstanceId"] not in wanted:
                    continue
                up = i.get("LifecycleState") == "InService" and i.get("HealthStatus", "Healthy") == "Healthy"
                prot = bool(i.get("ProtectedFromScaleIn")) if with_protection else None
                out[i["InstanceId"]] = PlatformState(up, prot)
        return out


Platform = EcsTasks | AsgInstances


# the probe ----------------------------------------------------------------------------------------
class SqsBusyProbe:
    """`BusyProbe` for a foreign ECS-service or ASG pool consuming an SQS queue."""

    def __init__(
        self, depth: DepthSource, platform: Platform, clock: Clock,
        protection: Protection = Protection.EBBTIDE, settle: float = DEFAULT_SETTLE,
    ) -> None:
        self.depth, self.platform, self.clock = depth, platform, clock
        self.protection, self.settle = protection, settle
        self._readings: deque[tuple[float, int, int]] = deque()  # (at, in flight + visible, visible)

    def held_now(self) -> int:
        """Messages in flight or about to be: in flight plus visible, read now."""
        stats = self.depth.stats()
        return stats.in_flight + stats.visible

    def read(self) -> tuple[int, int]:
        """Read the queue now: the settled (in flight + visible, visible) (see `settled_in_flight`)."""
        stats = self.depth.stats()
        now = self.clock.now()
        self._readings.append((now, stats.in_flight + stats.visible, stats.visible))
        while len(self._readings) > 1 and self._readings[0][0] < now - self.settle:
            self._readings.popleft()
        held = settled_in_flight([(t, h) for t, h, _ in self._readings], now, self.settle)
        visible = settled_in_flight([(t, v) for t, _, v in self._readings], now, self.settle)
        return held, visible

    def probe(self, instances: Sequence[Instance]) -> ProbeResult:
        held, visible = self.read()
        states = self.platform.states([i.id for i in instances], self.protection == Protection.WORKER)
        return ProbeResult(foreign_views(instances, states, self.protection, visible > 0), held)

    def close(self) -> None:
        self.depth.close()


# ebbtide protecting on the user's behalf ----------------------------------------------------------
class GuardedEcsService:
    """A foreign ECS-service pool whose tasks ebbtide protects while anything is in flight.

    The controller calls `sync_protection(busy)` every tick with the tasks it holds busy — with
    per-task busy-ness unknown, every running task while the settled in-flight count is above 0,
    none when it is 0 — and this turns task scale-in protection on for exactly those (refreshed
    before `minutes` run out) and off for the rest. `retire` lowers the desired count as the plain
    provider does, then reads the queue once more: if a message is in flight or visible by then,
    every running task is protected at once, before ECS picks the tasks to stop.
    """

    def __init__(self, inner: Provider, tasks: EcsTasks, probe: SqsBusyProbe, clock: Clock,
                 minutes: int = DEFAULT_PROTECT_MINUTES) -> None:
        self.inner, self.tasks, self.probe, self.clock, self.minutes = inner, tasks, probe, clock, minutes
        self.name, self.pool, self.retires_specific = inner.name, inner.pool, inner.retires_specific

    def launch(self, n: int) -> LaunchResult:
        return self.inner.launch(n)

    def inventory(self) -> list[Instance]:
        return self.inner.inventory()

    def _live(self) -> list[str]:
        return [i.id for i in self.inner.inventory() if not aws.is_pending(i.id)]

    def retire(self, ids: Sequence[str]) -> list[str]:
        gone = self.inner.retire(ids)
        if gone and self.probe.held_now() > 0:
            live = self._live()
            log.warning("a message went in flight while scaling in: protecting every task",
                        extra={"pool": self.pool, "tasks": len(live)})
            self.tasks.set_protection(live, True, self.minutes)
        return gone

    def sync_protection(self, busy: Collection[str]) -> tuple[list[str], list[str]]:
        live = self._live()
        until = self.tasks.protection(live)
        on, off = protection_changes(set(busy), live, until, self.clock.now(), self.minutes)
        if on:
            self.tasks.set_protection(on, True, self.minutes)
        if off:
            self.tasks.set_protection(off, False, self.minutes)
        if on or off:
            log.info("ecs task protection synced", extra={"pool": self.pool, "on": len(on), "off": len(off)})
        return on, off


class Unprotected:
    """A provider with its `sync_protection` hidden: the worker (or nobody) owns protection."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.name, self.pool, self.retires_specific = inner.name, inner.pool, inner.retires_specific

    def launch(self, n: int) -> LaunchResult:
        return self.inner.launch(n)

    def retire(self, ids: Sequence[str]) -> list[str]:
        return self.inner.retire(ids)

    def inventory(self) -> list[Instance]:
        return self.inner.inventory()


class QuietOnlyEcsService(Unprotected):
    """A foreign ECS-service pool nobody protects (`protection: off`): ECS stops tasks of its own
    choosing when the count goes down, so the count goes down only while the queue holds nothing
    (this also holds back the reaping of a task that never started)."""

    def __init__(self, inner: Provider, probe: SqsBusyProbe) -> None:
        super().__init__(inner)
        self.probe = probe

    def retire(self, ids: Sequence[str]) -> list[str]:
        if self.probe.held_now() > 0:
            log.info("scale-in held: the queue holds messages and no task is protected",
                     extra={"pool": self.pool, "asked": len(ids)})
            return []
        return self.inner.retire(ids)


# wiring -------------------------------------------------------------------------------------------
def _protection(pool: PoolConfig) -> Protection:
    raw = aws.PoolOptions(pool).optional("protection") or Protection.EBBTIDE.value
    try:
        return Protection(raw)
    except ValueError:
        raise ConfigError(f"{aws.PoolOptions(pool).key('protection')} is {raw!r}",
                          hint="use ebbtide, worker or off (docs/foreign-pools.md)") from None


def _number(pool: PoolConfig, key: str, default: float) -> float:
    value = pool.options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{aws.PoolOptions(pool).key(key)} must be a number of seconds/minutes ≥ 0")
    return float(value)


def open_sqs_probe(
    pool: PoolConfig, depth: DepthSource, settings: Settings, clock: Clock, client: Any = None
) -> SqsBusyProbe:
    """The probe for a foreign pool on an SQS depth source (providers ecs-service and asg)."""
    opts = aws.PoolOptions(pool)
    platform: Platform
    if pool.provider == "ecs-service":
        cluster = opts.required("cluster", hint="the ECS cluster of the worker service")
        platform = EcsTasks(client or aws.client("ecs", settings, opts), cluster)
    elif pool.provider == "asg":
        group = opts.required("asg_name", hint="the Auto Scaling group this pool scales")
        platform = AsgInstances(client or aws.client("autoscaling", settings, opts), group)
    else:
        raise ConfigError(f"pool {pool.name}: foreign workers on SQS need provider ecs-service or asg",
                          hint="SQS cannot say which consumer holds a message; only ECS task or ASG "
                          "instance protection can (docs/foreign-pools.md)")
    settle = _number(pool, "in_flight_settle", DEFAULT_SETTLE)
    return SqsBusyProbe(depth, platform, clock, _protection(pool), settle)


def guard_provider(pool: PoolConfig, provider: Provider, probe: SqsBusyProbe, clock: Clock) -> Provider:
    """The provider the controller drives for a foreign SQS pool, with protection as configured:
    ECS + `ebbtide` gains `sync_protection`; ASG + `ebbtide` keeps the group provider's own (busy
    instances protected); `worker` and `off` pools never have protection written by ebbtide, and an
    unprotected ECS service (`off`) is scaled in only while the queue holds nothing."""
    mode = probe.protection
    if mode == Protection.EBBTIDE and isinstance(probe.platform, EcsTasks):
        minutes = int(_number(pool, "protect_minutes", DEFAULT_PROTECT_MINUTES))
        if not 1 <= minutes <= 2880:
            raise ConfigError(f"{aws.PoolOptions(pool).key('protect_minutes')} must be 1 to 2880")
        return GuardedEcsService(provider, probe.platform, probe, clock, minutes)
    if mode == Protection.EBBTIDE:
        return provider
    if mode == Protection.OFF and isinstance(probe.platform, EcsTasks):
        return QuietOnlyEcsService(provider, probe)
    return Unprotected(provider)
