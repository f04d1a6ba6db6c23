"""Read a live AWS setup through boto3 and turn it into the config the doctor's checks read.

One set of checks, two sources: the SQS queue's attributes become `queue`/`worker` settings, the
Auto Scaling group's size and step-scaling policies (with the CloudWatch alarms that trigger them)
become a pool and its `asg_steps`, and the ECS service's target-tracking policy becomes the fleet
policy — then `checks.diagnose` runs on that. What AWS cannot tell (whether the workers extend
their message's visibility while they work, how fast they transcode) comes from the caller.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ebbtide.config import PoolConfig, Settings
from ebbtide.config.sections import StepPolicyConfig, StepRule, TargetPolicyConfig
from ebbtide.doctor.checks import REFERENCE_JOB, Finding, diagnose
from ebbtide.errors import EbbtideError, NotFound

VISIBLE_METRIC = "ApproximateNumberOfMessagesVisible"
ClientFactory = Callable[[str], Any]


@dataclass(frozen=True)
class AwsSetup:
    """What was read, in AWS's own terms (plain data, so tests and reports can show it)."""

    visibility_timeout: float | None = None
    wait: float | None = None
    max_receives: int | None = None  # None: no redrive policy, no DLQ
    asg_name: str | None = None
    asg_max: int | None = None
    asg_cooldown: float | None = None
    steps: tuple[StepRule, ...] | None = None  # ExactCapacity steps on queue depth
    scale_to_zero_after: float | None = None  # the alarm that sets capacity 0: period x evaluations
    ecs_max: int | None = None
    ecs_policy: TargetPolicyConfig | None = None
    notes: tuple[str, ...] = field(default=())


def boto_clients(region: str, endpoint_url: str | None) -> ClientFactory:
    import boto3

    def make(service: str) -> Any:
        return boto3.client(service, region_name=region, endpoint_url=endpoint_url)

    return make


def _call(what: str, fn: Callable[..., Any], **kw: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(**kw)
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if "NonExistent" in code or "NotFound" in code or code == "AWS.SimpleQueueService.NonExistentQueue":
            raise NotFound(f"{what}: {code}", hint="check the name/URL and the region") from None
        raise EbbtideError(f"{what}: {code or e}", hint="check credentials, region and permissions") from None
    except BotoCoreError as e:
        raise EbbtideError(f"{what}: {e}", hint="check the endpoint URL and network") from None


def read_queue(sqs: Any, url: str) -> dict[str, Any]:
    attrs = _call(f"SQS queue {url}", sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["All"])
    a = attrs.get("Attributes", {})
    redrive = a.get("RedrivePolicy")
    max_receives = int(json.loads(redrive)["maxReceiveCount"]) if redrive else None
    return {
        "visibility_timeout": float(a.get("VisibilityTimeout", 30)),
        "wait": float(a.get("ReceiveMessageWaitTimeSeconds", 0)),
        "max_receives": max_receives,
    }


def _alarms_by_action(cw: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for page in _call("CloudWatch alarms", cw.get_paginator("describe_alarms").paginate):
        for alarm in page.get("MetricAlarms", []):
            for arn in alarm.get("AlarmActions", []):
                out[arn] = alarm
    return out


def steps_from_policy(policy: dict[str, Any], threshold: float) -> tuple[StepRule, ...] | None:
    """ExactCapacity step adjustments → (queue depth at least, capacity); bounds are relative to
    the alarm's threshold, as in `aws autoscaling put-scaling-policy --step-adjustments`."""
    if policy.get("AdjustmentType") != "ExactCapacity":
        return None
    rules = []
    for adj in policy.get("StepAdjustments", []):
        lower = adj.get("MetricIntervalLowerBound")
        depth = 0 if lower is None else max(0, math.ceil(threshold + float(lower) - 1e-9))
        rules.append(StepRule(at_least=depth, capacity=int(adj["ScalingAdjustment"])))
    return tuple(sorted(rules, key=lambda r: r.at_least)) or None


def read_asg(asg: Any, cw: Any, name: str) -> dict[str, Any]:
    groups = _call(f"Auto Scaling group {name}", asg.describe_auto_scaling_groups,
                   AutoScalingGroupNames=[name])
    if not groups.get("AutoScalingGroups"):
        raise NotFound(f"Auto Scaling group {name} not found", hint="check --asg and the region")
    g = groups["AutoScalingGroups"][0]
    policies = _call(f"scaling policies of {name}", asg.describe_policies, AutoScalingGroupName=name)
    alarms = _alarms_by_action(cw)
    out: dict[str, Any] = {"asg_name": name, "asg_max": int(g["MaxSize"]),
                           "asg_cooldown": float(g.get("DefaultCooldown", 300))}
    notes: list[str] = []
    for p in policies.get("ScalingPolicies", []):
        alarm = alarms.get(p.get("PolicyARN", ""), {})
        if p.get("PolicyType") == "StepScaling":
            steps = steps_from_policy(p, float(alarm.get("Threshold", 0.0)))
            if steps is None:
                kind = p.get("AdjustmentType")
                notes.append(f"step policy {p['PolicyName']}: {kind} is not an exact table")
            elif any(r.capacity > 0 for r in steps):
                out["steps"] = steps
        adjs = p.get("StepAdjustments") or []
        zero = p.get("AdjustmentType") == "ExactCapacity" and (
            p.get("ScalingAdjustment") == 0 or (adjs and all(a.get("ScalingAdjustment") == 0 for a in adjs))
        )
        if zero and alarm:
            periods = float(alarm.get("EvaluationPeriods", 1))
            out["scale_to_zero_after"] = float(alarm.get("Period", 60)) * periods
    out["notes"] = notes
    return out


def read_ecs_service(aas: Any, cluster: str, service: str) -> dict[str, Any]:
    rid = f"service/{cluster}/{service}"
    targets = _call(f"ECS scalable target {rid}", aas.describe_scalable_targets, ServiceNamespace="ecs",
                    ResourceIds=[rid])
    out: dict[str, Any] = {}
    if targets.get("ScalableTargets"):
        out["ecs_max"] = int(targets["ScalableTargets"][0]["MaxCapacity"])
    pols = _call(f"ECS scaling policies of {rid}", aas.describe_scaling_policies, ServiceNamespace="ecs",
                 ResourceId=rid)
    for p in pols.get("ScalingPolicies", []):
        tt = p.get("TargetTrackingScalingPolicyConfiguration")
        if not tt:
            continue
        metric = (tt.get("CustomizedMetricSpecification") or {}).get("MetricName", "")
        out["ecs_policy"] = TargetPolicyConfig(
            target_per_worker=float(tt["TargetValue"]),
            metric="visible" if metric == VISIBLE_METRIC else "visible_and_in_flight",
            scale_out_cooldown=float(tt.get("ScaleOutCooldown", 300)),
            scale_in_cooldown=float(tt.get("ScaleInCooldown", 300)),
        )
    if not out:
        raise NotFound(f"no Application Auto Scaling target for {rid}", hint="check --cluster and --service")
    return out


def read_setup(
    clients: ClientFactory,
    queue_url: str | None = None,
    asg: str | None = None,
    cluster: str | None = None,
    service: str | None = None,
) -> AwsSetup:
    if not (queue_url or asg or (cluster and service)):
        raise EbbtideError("nothing to read",
                           hint="give --queue-url URL, --asg NAME or --cluster C --service S")
    if bool(cluster) != bool(service):
        raise EbbtideError("--cluster and --service go together", hint="--cluster C --service S")
    got: dict[str, Any] = {}
    notes: list[str] = []
    if queue_url:
        got.update(read_queue(clients("sqs"), queue_url))
    if asg:
        a = read_asg(clients("autoscaling"), clients("cloudwatch"), asg)
        notes.extend(a.pop("notes"))
        got.update(a)
    if cluster and service:
        got.update(read_ecs_service(clients("application-autoscaling"), cluster, service))
    return AwsSetup(**got, notes=tuple(notes))


def _pool_name(name: str) -> str:
    clean = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:40]
    return clean or "aws"


def to_settings(
    setup: AwsSetup, base: Settings, heartbeat: bool = False, speed: float | None = None
) -> Settings:
    """The config that behaves like this AWS setup: what the checks read."""
    q = base.queue.model_dump()
    w = base.worker.model_dump()
    f = base.fleet.model_dump()
    if setup.visibility_timeout is not None:
        q["lease"] = setup.visibility_timeout
    if setup.wait is not None:
        q["wait"] = setup.wait
    if setup.max_receives is not None:
        q["max_receives"] = setup.max_receives
    w["heartbeat"] = heartbeat
    paid = [p for p in base.fleet.pools if p.provider != "static"]
    guess = speed or (min(p.speed for p in paid) if paid else 1.0)
    caps = [c for c in (setup.asg_max, setup.ecs_max) if c is not None]
    if caps:
        options: dict[str, Any] = {}
        if setup.steps and setup.ecs_policy is not None:
            options["asg_steps"] = [f"{r.at_least}:{r.capacity}" for r in setup.steps]
        pool = PoolConfig(
            name=_pool_name(setup.asg_name or "ecs-service"),
            provider="asg" if setup.asg_name else "ecs-service",
            max=min(caps),
            speed=guess,
            options=options,
        )
        static = [p.model_dump() for p in base.fleet.pools if p.provider == "static"]
        f["pools"] = [*static, pool.model_dump()]
    if setup.ecs_policy is not None:
        f["policy"] = setup.ecs_policy.model_dump()
    elif setup.steps:
        f["policy"] = StepPolicyConfig(
            steps=setup.steps,
            scale_in_after=setup.scale_to_zero_after or 600.0,
            cooldown=setup.asg_cooldown or 300.0,
        ).model_dump()
    data = base.model_dump()
    data.update(queue=q, worker=w, fleet=f)
    return Settings.model_validate(data)


def aws_only_findings(setup: AwsSetup) -> list[Finding]:
    """Failure modes the config has no key for."""
    out = []
    if setup.visibility_timeout is not None and setup.max_receives is None:
        out.append(
            Finding(
                "no-dlq",
                "warning",
                "the queue has no redrive policy (no dead-letter queue)",
                "a message that always fails (a corrupt upload) is received again and again for the whole "
                "retention period, paying a worker each time, and never surfaces as failed",
                "add a RedrivePolicy with maxReceiveCount 3-5 to a dead-letter queue",
            )
        )
    out.extend(Finding("unread", "warning", n, "the doctor could not map it to a check", "review it by hand")
               for n in setup.notes)
    return out


def diagnose_aws(
    setup: AwsSetup,
    base: Settings,
    heartbeat: bool = False,
    speed: float | None = None,
    media_seconds: float = REFERENCE_JOB,
) -> list[Finding]:
    findings = diagnose(to_settings(setup, base, heartbeat, speed), media_seconds) + aws_only_findings(setup)
    return sorted(findings, key=lambda f: f.severity != "error")
