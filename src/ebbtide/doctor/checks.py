"""The doctor's checks: pure functions over a config, one per failure mode in the seeds.

An AWS-style setup (seed 000) is written with ordinary keys: `worker.heartbeat: false` (a worker
that never extends its lease, and never protects itself from scale-in), `queue.wait: 0`, a `target`
or `step` policy, and on an `asg` pool the group's own step table as options
`asg_steps: ["1:1", "2:2"]` (queue depth : exact capacity). Each check returns findings; a finding
says what, why (the failure it causes, with a number), and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from ebbtide.config import PoolConfig, Settings
from ebbtide.config.sections import StepPolicyConfig, StepRule, SustainedPolicyConfig, TargetPolicyConfig
from ebbtide.errors import ConfigError
from ebbtide.sim.fleets import SimPool, ladder_bytes_per_second

Severity = Literal["error", "warning"]
REFERENCE_JOB = 7200.0  # media seconds: seed 000's 2-hour match
REFERENCE_BYTES = 4_000_000_000


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    what: str
    why: str
    fix: str


Check = Callable[[Settings, float], list[Finding]]


def _scalable(s: Settings) -> list[PoolConfig]:
    return [p for p in s.fleet.pools if p.provider != "static"]


def _cap(p: PoolConfig) -> int:
    return p.max if p.quota is None else min(p.max, p.quota)


def job_seconds(s: Settings, media_seconds: float) -> tuple[float, str]:
    """Wall seconds of a reference job on the slowest pool: download, transcode, upload."""
    worst, name = 0.0, ""
    out_bps = ladder_bytes_per_second(s)
    for p in s.fleet.pools:
        bw = float(p.options.get("bandwidth_mbps", 400)) * 1e6 / 8  # type: ignore[arg-type]
        sp = SimPool(p, bandwidth=bw)
        size = REFERENCE_BYTES * media_seconds / REFERENCE_JOB
        t = (size + media_seconds * out_bps) / sp.bandwidth + media_seconds / p.speed
        if t > worst:
            worst, name = t, p.name
    return worst, name


def asg_steps(s: Settings) -> tuple[StepRule, ...] | None:
    """The Auto Scaling group's own step table, from an `asg` pool's `asg_steps` option."""
    for p in s.fleet.pools:
        raw = p.options.get("asg_steps")
        if raw is None:
            continue
        items = raw if isinstance(raw, list) else [str(raw)]
        rules = []
        for item in items:
            try:
                depth, cap = (int(x) for x in str(item).split(":"))
            except ValueError:
                raise ConfigError(
                    f"fleet.pools[{p.name}].options.asg_steps: {item!r} is not depth:capacity",
                    hint='asg_steps: ["1:1", "2:2", "3:3"]',
                ) from None
            rules.append(StepRule(at_least=depth, capacity=cap))
        return tuple(rules)
    return None


def _m(seconds: float) -> str:
    return f"{seconds / 60:.0f} min"


def check_lease(s: Settings, media: float) -> list[Finding]:
    if s.worker.heartbeat:
        return []
    lease = s.queue.lease
    job, pool = job_seconds(s, media)
    if lease >= job:
        return []
    extra = 1 + int(job // lease)
    return [
        Finding(
            "lease-short",
            "error",
            f"visibility timeout {_m(lease)} is shorter than a {_m(media)} video's {_m(job)} on {pool}, "
            "and the worker does not extend its lease (worker.heartbeat: false)",
            f"the message turns visible again mid-job: another worker starts the same job (up to {extra} "
            f"copies of one job at a time), the first worker's delete fails, and after queue.max_receives "
            f"({s.queue.max_receives}) receives the job is dead-lettered although it was being worked on",
            "set worker.heartbeat: true (the lease is extended every lease/3 while the job runs); "
            "a longer timeout only moves the problem to the next longer video",
        )
    ]


def _shrinks_on(s: Settings) -> tuple[str, float] | None:
    """(what, delay) when the policy scales in on a metric blind to running jobs."""
    pol = s.fleet.policy
    if isinstance(pol, TargetPolicyConfig) and pol.metric == "visible":
        return "target tracking on visible messages", pol.scale_in_cooldown
    if isinstance(pol, StepPolicyConfig):
        return "step scaling on visible messages", pol.scale_in_after
    if isinstance(pol, SustainedPolicyConfig):
        return "a waiting-jobs threshold", pol.idle_to_zero
    return None


def check_scale_in(s: Settings, media: float) -> list[Finding]:
    out: list[Finding] = []
    job, _ = job_seconds(s, media)
    shrink = _shrinks_on(s)
    unprotected = not s.worker.heartbeat  # a worker outside ebbtide's runtime: no drain, no protection
    if shrink and unprotected and shrink[1] < job:
        what, delay = shrink
        out.append(
            Finding(
                "scale-in-busy",
                "error",
                f"scale-in by {what} after {_m(delay)}, while a job runs {_m(job)}",
                f"a received message is invisible, so the metric reads 0 while every worker is busy; "
                f"{_m(delay)} later the service removes capacity and picks any task or instance, killing "
                f"jobs about {delay / job:.0%} of the way through",
                "let ebbtide's controller scale (it retires idle workers only and drains busy ones), or "
                "use fleet.policy kind: deadline; on ECS, turn on task scale-in protection while busy",
            )
        )
    if asg_steps(s) is not None and unprotected:
        out.append(
            Finding(
                "asg-scale-to-zero",
                "warning",
                "the Auto Scaling group scales itself on queue depth (asg_steps)",
                "its scale-to-zero alarm counts visible messages only and terminates instances with jobs "
                "still running on them",
                "drop the group's own policies and let the controller set desired capacity with "
                "instance scale-in protection",
            )
        )
    return out


def check_step_table(s: Settings, media: float) -> list[Finding]:
    total = sum(_cap(p) for p in _scalable(s))
    tables: list[tuple[str, Sequence[StepRule]]] = []
    if isinstance(s.fleet.policy, StepPolicyConfig):
        tables.append(("fleet.policy.steps", s.fleet.policy.steps))
    asg = asg_steps(s)
    if asg is not None:
        tables.append(("asg_steps", asg))
    out = []
    for where, steps in tables:
        top = max((r.capacity for r in steps), default=0)
        if steps and top < total:
            out.append(
                Finding(
                    "step-table-short",
                    "error",
                    f"{where} tops out at {top} worker(s); the pools allow {total}",
                    f"with {top + 1}+ jobs waiting the worker number {top + 1} never starts: "
                    f"{total - top} of {total} workers you pay quota for stay unused and the backlog waits",
                    f"add a step reaching {total} (e.g. at_least: {total}, capacity: {total})",
                )
            )
    return out


def check_long_polling(s: Settings, media: float) -> list[Finding]:
    if s.queue.wait > 0:
        return []
    return [
        Finding(
            "no-long-polling",
            "warning",
            "queue.wait is 0: workers short-poll",
            "each idle worker sends a receive every poll (about 86,400 empty receives a day at one per "
            "second) instead of 4,320 with 20 s long polling, and may see an empty answer "
            "while messages exist",
            "set queue.wait: 20s",
        )
    ]


def check_dlq(s: Settings, media: float) -> list[Finding]:
    if s.queue.max_receives > 1:
        return []
    return [
        Finding(
            "no-retry",
            "error",
            "queue.max_receives is 1",
            "a job whose worker crashes or loses its lease is dead-lettered on the next receive: no retry",
            "set queue.max_receives: 3 to 5",
        )
    ]


def check_thrash(s: Settings, media: float) -> list[Finding]:
    out = []
    pol = s.fleet.policy
    to_zero = {StepPolicyConfig: "scale_in_after", SustainedPolicyConfig: "idle_to_zero"}.get(type(pol))
    for p in _scalable(s):
        waits: list[tuple[str, float]] = []
        if pol.kind != "deadline":  # the deadline policy keeps a worker warm when a job is due
            waits.append(("fleet.drain_idle_after", s.fleet.drain_idle_after))
        if to_zero:
            waits.append((f"fleet.policy.{to_zero}", float(getattr(pol, to_zero))))
        if p.idle_exit is not None:
            waits.append((f"fleet.pools[{p.name}].idle_exit", p.idle_exit))
        for key, wait in waits:
            if wait < p.boot_time:
                out.append(
                    Finding(
                        "thrash",
                        "warning",
                        f"{key} ({wait:g}s) is shorter than pool {p.name}'s boot time ({p.boot_time:g}s)",
                        "a worker is stopped sooner than a new one takes to boot: a steady trickle of jobs "
                        "pays a cold start (and the 60 s billing minimum) each time",
                        f"keep idle workers at least {p.boot_time:g}s, "
                        "or use the deadline policy's keep_warm: auto",
                    )
                )
    return out


def check_spot_fallback(s: Settings, media: float) -> list[Finding]:
    pools = _scalable(s)
    on_demand = [p for p in pools if not p.spot and _cap(p) > 0]
    return [
        Finding(
            "spot-no-fallback",
            "warning",
            f"spot pool {p.name} has no on-demand pool to fall back to",
            "when spot capacity is short (seed 001: ~5% of launches) or reclaimed, the backlog waits for it",
            "add an on-demand pool after the spot pool (even max: 1)",
        )
        for p in pools
        if p.spot and not on_demand
    ]


def check_quota(s: Settings, media: float) -> list[Finding]:
    return [
        Finding(
            "max-above-quota",
            "warning",
            f"pool {p.name} allows max {p.max} but the account quota is {p.quota}",
            f"launches beyond {p.quota} fail (VcpuLimitExceeded); the controller caps the pool at {p.quota}",
            f"set max: {p.quota} or request a quota increase",
        )
        for p in s.fleet.pools
        if p.quota is not None and p.max > p.quota
    ]


TERMINATE_ALL_WHAT = "'0 waiting for {idle} → terminate all' ({where}), while a job runs {job}"
TERMINATE_ALL_WHY = (
    "the rule counts waiting jobs only (BullMQ getWaitingCount(): active jobs are not waiting), so "
    "once the last job is taken it starts its idle clock with every spot still busy; {idle} later "
    "seed 002's script terminates all spots, killing the active jobs (ebbtide sim -s long-sources: "
    "seed-002-thresholds kills jobs, seed-002-ebbtide none)"
)


def check_terminate_all(s: Settings, media: float) -> list[Finding]:
    """Seed 002's scale-to-zero: `sustained` says 0 after `idle_to_zero` of nothing *waiting*."""
    pol = s.fleet.policy
    if not isinstance(pol, SustainedPolicyConfig) or not s.worker.heartbeat:
        return []  # without heartbeats check_scale_in already reports it, as an error
    job, _ = job_seconds(s, media)
    if pol.idle_to_zero >= job:
        return []
    foreign = [p.name for p in s.fleet.pools if p.workers == "foreign"]
    acted = (f"ebbtide acts on pool(s) {', '.join(foreign)}: a spot whose worker holds a BullMQ lock is "
             "kept, and retired once idle" if foreign else "ebbtide's controller drains busy workers")
    return [
        Finding(
            "terminate-all",
            "warning",
            TERMINATE_ALL_WHAT.format(idle=_m(pol.idle_to_zero), where="fleet.policy sustained", job=_m(job)),
            TERMINATE_ALL_WHY.format(idle=_m(pol.idle_to_zero)) + f"; here {acted}",
            "let only ebbtide act on the spots (remove the seed's auto-scaler cron), or use fleet.policy "
            "kind: deadline; never terminate a spot while the queue's active count is above 0",
        )
    ]


CHECKS: tuple[Check, ...] = (
    check_lease,
    check_scale_in,
    check_step_table,
    check_long_polling,
    check_dlq,
    check_thrash,
    check_spot_fallback,
    check_quota,
    check_terminate_all,
)


def diagnose(s: Settings, media_seconds: float = REFERENCE_JOB) -> list[Finding]:
    out: list[Finding] = []
    for check in CHECKS:
        out.extend(check(s, media_seconds))
    return sorted(out, key=lambda f: f.severity != "error")
