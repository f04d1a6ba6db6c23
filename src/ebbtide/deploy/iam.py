"""Least-privilege IAM statements, generated from the actions each part declares it calls.

The providers (`fleet.providers.*.ACTIONS`), the SQS queue and the S3 store list the AWS actions
they call; this module only decides *where* each action may act (which ARNs, which conditions).
An action without a rule here is a `KeyError` at plan time, so a provider that starts calling
something new cannot ship with a policy that silently lacks or over-grants it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ebbtide.deploy.cfn import Json, arn, sub
from ebbtide.fleet.foreign import sqs as foreign_sqs
from ebbtide.fleet.providers import asg, ec2, ecs_service, ecs_task
from ebbtide.fleet.providers.aws import TAG_POOL
from ebbtide.queue import sqs, sqs_depth
from ebbtide.storage import s3
from ebbtide.worker import ecs_protection

PROVIDER_ACTIONS: dict[str, tuple[str, ...]] = {
    "ec2": ec2.ACTIONS,
    "asg": asg.ACTIONS,
    "ecs-service": ecs_service.ACTIONS,
    "ecs-task": ecs_task.ACTIONS,
}


@dataclass(frozen=True)
class Scope:
    """Where one pool's provider acts: names as CloudFormation values (plain or intrinsic)."""

    pool: str
    cluster: str = ""
    service: str = ""
    family: str = ""
    group: str = ""
    launch_template: Json | str = ""  # the launch template's ARN (a CloudFormation value)
    pass_roles: tuple[Json, ...] = ()
    passed_to: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


Rule = Callable[[Scope], tuple[list[Any], Json | None]]

STAR: list[Any] = ["*"]


def _ec2(kind: str) -> Json:
    return arn("ec2", f"{kind}/*")


def _cluster_cond(s: Scope) -> Json:
    return {"ArnEquals": {"ecs:cluster": arn("ecs", f"cluster/{s.cluster}")}}


RULES: dict[str, Rule] = {
    # EC2 pools: launch only from the pool's template; tag only while launching; terminate only
    # instances that carry the pool's tag. Describe calls take no resource-level scoping in IAM.
    "ec2:RunInstances": lambda s: (
        [
            s.launch_template,
            _ec2("instance"),
            _ec2("volume"),
            _ec2("network-interface"),
            _ec2("subnet"),
            _ec2("security-group"),
            _ec2("spot-instances-request"),
            sub("arn:${AWS::Partition}:ec2:${AWS::Region}::image/*"),
        ],
        None,
    ),
    "ec2:CreateTags": lambda s: (
        [_ec2("instance"), _ec2("volume"), _ec2("spot-instances-request")],
        {"StringEquals": {"ec2:CreateAction": "RunInstances"}},
    ),
    "ec2:TerminateInstances": lambda s: (
        [_ec2("instance")],
        {"StringEquals": {f"aws:ResourceTag/{TAG_POOL}": s.pool}},
    ),
    "ec2:DescribeInstances": lambda s: (STAR, None),
    "iam:PassRole": lambda s: (list(s.pass_roles), {"StringEquals": {"iam:PassedToService": s.passed_to}}),
    # a foreign pool's depth source, read only (queue/sqs_depth.py)
    "sqs:GetQueueUrl": lambda s: ([s.extra["queue_arn"]], None),
    "sqs:GetQueueAttributes": lambda s: ([s.extra["queue_arn"]], None),
    # Auto Scaling groups: only the pool's group
    "autoscaling:DescribeAutoScalingGroups": lambda s: (STAR, None),
    "autoscaling:SetDesiredCapacity": lambda s: ([_group(s)], None),
    "autoscaling:TerminateInstanceInAutoScalingGroup": lambda s: ([_group(s)], None),
    "autoscaling:SetInstanceProtection": lambda s: ([_group(s)], None),
    # ECS: the pool's service / task definition, tasks of the stack's cluster
    "ecs:DescribeServices": lambda s: ([arn("ecs", f"service/{s.cluster}/{s.service}")], None),
    "ecs:UpdateService": lambda s: ([arn("ecs", f"service/{s.cluster}/{s.service}")], None),
    "ecs:ListTasks": lambda s: (STAR, _cluster_cond(s)),  # IAM checks ListTasks by cluster condition
    "ecs:DescribeTasks": lambda s: ([arn("ecs", f"task/{s.cluster}/*")], None),
    "ecs:StopTask": lambda s: ([arn("ecs", f"task/{s.cluster}/*")], None),
    "ecs:RunTask": lambda s: ([arn("ecs", f"task-definition/{s.family}:*")], _cluster_cond(s)),
    "ecs:TagResource": lambda s: (
        [arn("ecs", f"task/{s.cluster}/*")],
        {"StringEquals": {"ecs:CreateAction": "RunTask"}},
    ),
    "ecs:DescribeTaskDefinition": lambda s: (STAR, None),
    # the worker's own task (busy = protected from scale-in)
    "ecs:UpdateTaskProtection": lambda s: ([arn("ecs", f"task/{s.cluster}/*")], None),
    # a foreign ECS service's protection, read (protection: worker) or set (protection: ebbtide)
    "ecs:GetTaskProtection": lambda s: ([arn("ecs", f"task/{s.cluster}/*")], None),
}


def _group(s: Scope) -> Json:
    return arn("autoscaling", f"autoScalingGroup:*:autoScalingGroupName/{s.group}")


def statements(actions: Iterable[str], scope: Scope, sid: str) -> list[Json]:
    """One statement per distinct (resources, condition), in the order the actions are listed."""
    grouped: dict[str, Json] = {}
    for action in actions:
        resources, condition = RULES[action](scope)
        key = repr((resources, condition))
        if key not in grouped:
            st: Json = {
                "Sid": f"{sid}{len(grouped) + 1}",
                "Effect": "Allow",
                "Action": [],
                "Resource": resources if resources != STAR else "*",
            }
            if condition:
                st["Condition"] = condition
            grouped[key] = st
        if action not in grouped[key]["Action"]:
            grouped[key]["Action"].append(action)
    return list(grouped.values())


def provider_statements(provider: str, scope: Scope, sid: str) -> list[Json]:
    return statements(PROVIDER_ACTIONS[provider], scope, sid)


# which of the foreign SQS probe's actions act on which provider's workers
_PROBE_SERVICE = {"ecs-service": "ecs:", "asg": "autoscaling:"}


def probe_actions(provider: str) -> tuple[str, ...]:
    """The foreign SQS probe's calls (`fleet/foreign/sqs.ACTIONS`) on this provider's workers."""
    prefix = _PROBE_SERVICE.get(provider)
    return tuple(a for a in foreign_sqs.ACTIONS if prefix and a.startswith(prefix))


def foreign_statements(provider: str, scope: Scope, sid: str, sqs_probe: bool) -> list[Json]:
    """A foreign pool: the provider's calls plus, on an SQS depth source, the probe's."""
    extra = probe_actions(provider) if sqs_probe else ()
    return statements(PROVIDER_ACTIONS[provider] + extra, scope, sid)


def depth_statements(queue_arn: Json) -> list[Json]:
    """Read access to an `sqs://` depth source another program owns."""
    return statements(sqs_depth.ACTIONS, Scope(pool="", extra={"queue_arn": queue_arn}), "DepthSource")


def data_statements(queue_arns: list[Json], bucket: Json, prefix: str, config_key: str) -> list[Json]:
    """What producers, workers and the scaler do with the queue and the media bucket."""
    objects = sub("arn:${AWS::Partition}:s3:::${B}/" + (f"{prefix}/*" if prefix else "*"), B=bucket)
    config = sub("arn:${AWS::Partition}:s3:::${B}/" + config_key, B=bucket)
    return [
        {"Sid": "Queue", "Effect": "Allow", "Action": list(sqs.ACTIONS), "Resource": queue_arns},
        {
            "Sid": "MediaList",
            "Effect": "Allow",
            "Action": list(s3.BUCKET_ACTIONS),
            "Resource": sub("arn:${AWS::Partition}:s3:::${B}", B=bucket),
        },
        {"Sid": "MediaObjects", "Effect": "Allow", "Action": list(s3.OBJECT_ACTIONS), "Resource": objects},
        {"Sid": "ReadConfig", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": config},
    ]


def protection_statements(cluster: str) -> list[Json]:
    return statements(ecs_protection.ACTIONS, Scope(pool="", cluster=cluster), "TaskProtection")


def log_statements(log_groups: list[Json]) -> list[Json]:
    return [
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [sub("${G}:log-stream:*", G=g) for g in log_groups],
        }
    ]


def ecr_statements(images: Iterable[str]) -> list[Json]:
    """Pull rights for images in this account's ECR; images elsewhere (ghcr.io) need none."""
    repos = sorted({i.split("/", 1)[1].split(":")[0].split("@")[0] for i in images if ".dkr.ecr." in i})
    if not repos:
        return []
    return [
        {"Sid": "EcrToken", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
        {
            "Sid": "EcrPull",
            "Effect": "Allow",
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": [arn("ecr", f"repository/{r}") for r in repos],
        },
    ]


def document(stmts: list[Json]) -> Json:
    return {"Version": "2012-10-17", "Statement": stmts}


def assume(service: str) -> Json:
    return document([{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}])
