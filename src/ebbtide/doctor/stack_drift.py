"""`ebbtide doctor --aws --stack NAME`: the deployed stack's resources against its own template.

CloudFormation keeps the template it applied; hand edits in the console (a queue's visibility
changed, a launch template deleted, an ASG's scale-in protection turned off) drift from it
silently and bring back the seeds' mistakes. `expectations` (pure) turns the template and the
stack's physical resource ids into the literal properties to compare; `read_live` (I/O) reads
those same properties through boto3; `compare` (pure) turns the differences into findings.
Only literal values are compared: a property the template computes (`Ref`, `Fn::GetAtt`) is
checked by existence only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from ebbtide.doctor.checks import Finding
from ebbtide.errors import EbbtideError, NotFound

ClientFactory = Callable[[str], Any]
MISSING = object()  # a live property the resource does not have

# resource type -> template property -> how the live side names it (see read_live)
WATCHED: dict[str, tuple[str, ...]] = {
    "AWS::SQS::Queue": (
        "VisibilityTimeout",
        "ReceiveMessageWaitTimeSeconds",
        "RedrivePolicy.maxReceiveCount",
    ),
    "AWS::AutoScaling::AutoScalingGroup": ("MinSize", "MaxSize", "NewInstancesProtectedFromScaleIn"),
    "AWS::EC2::LaunchTemplate": (),
    "AWS::S3::Bucket": (),
    "AWS::ECS::Cluster": (),
    "AWS::ECS::TaskDefinition": (),
    "AWS::IAM::Role": (),
}


@dataclass(frozen=True)
class Expected:
    """One resource of the stack and the literal properties its template gives it."""

    logical_id: str
    type: str
    physical_id: str
    properties: Mapping[str, str]  # dotted property -> value as text


@dataclass(frozen=True)
class Live:
    """What AWS says of that resource now: None = it is gone."""

    properties: Mapping[str, str] | None


def _text(value: Any) -> str | None:
    """A literal as text (CloudFormation passes numbers and booleans as strings); None = computed."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value).lower() if str(value).lower() in ("true", "false") else str(value)
    return None


def _dotted(props: Mapping[str, Any], key: str) -> Any:
    value: Any = props
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def parse_template(body: Any) -> dict[str, Any]:
    """get_template's TemplateBody: a dict, or JSON/YAML text (depends on how it was sent)."""
    if isinstance(body, dict):
        return body
    try:
        return dict(json.loads(body))
    except (TypeError, ValueError):
        loaded = yaml.safe_load(body)
        if not isinstance(loaded, dict):
            raise EbbtideError("the stack's template is not a mapping", hint="redeploy the stack") from None
        return loaded


def expectations(template: Mapping[str, Any], physical: Mapping[str, str]) -> list[Expected]:
    """What to compare, for the watched resource types the stack holds (pure)."""
    out = []
    for lid, res in sorted(template.get("Resources", {}).items()):
        kind = res.get("Type", "")
        if kind not in WATCHED or lid not in physical:
            continue
        props = res.get("Properties", {}) or {}
        literal = {}
        for key in WATCHED[kind]:
            text = _text(_dotted(props, key))
            if text is not None:
                literal[key] = text
        out.append(Expected(lid, kind, physical[lid], literal))
    return out


def compare(stack: str, expected: Iterable[Expected], live: Mapping[str, Live]) -> list[Finding]:
    """One finding per resource gone and per literal property changed (pure)."""
    findings = []
    for e in expected:
        now = live.get(e.logical_id, Live(None)).properties
        if now is None:
            findings.append(
                Finding(
                    "stack-missing",
                    "error",
                    f"{e.type} {e.physical_id} ({e.logical_id}) of stack {stack} is gone",
                    "the stack's template names it but AWS no longer has it: whatever uses it fails "
                    "(a pool whose launch template is gone launches nothing)",
                    f"run `ebbtide aws deploy` (or update stack {stack}) to recreate it",
                )
            )
            continue
        for key, want in sorted(e.properties.items()):
            got = now.get(key)
            if got != want:
                findings.append(
                    Finding(
                        "stack-drift",
                        "error",
                        f"{e.type} {e.physical_id}: {key} is {got if got is not None else 'unset'}, "
                        f"the stack says {want}",
                        "changed by hand since the stack was deployed: the values the stack chose "
                        "(lease, long polling, receive limit, scale-in protection) no longer hold",
                        "change it back, or change the config and run `ebbtide aws deploy`",
                    )
                )
    return findings


# I/O --------------------------------------------------------------------------------------------
def _gone(e: Exception) -> bool:
    from botocore.exceptions import ClientError

    if not isinstance(e, ClientError):
        return False
    code = str(e.response.get("Error", {}).get("Code", ""))
    msg = str(e.response.get("Error", {}).get("Message", ""))
    return any(w in code or w in msg for w in ("NonExistent", "NotFound", "NoSuch", "does not exist", "404"))


def _read_one(clients: ClientFactory, e: Expected) -> Live:
    pid = e.physical_id
    if e.type == "AWS::SQS::Queue":
        a = clients("sqs").get_queue_attributes(QueueUrl=pid, AttributeNames=["All"])["Attributes"]
        props = {k: str(a[k]) for k in ("VisibilityTimeout", "ReceiveMessageWaitTimeSeconds") if k in a}
        if a.get("RedrivePolicy"):
            props["RedrivePolicy.maxReceiveCount"] = str(json.loads(a["RedrivePolicy"])["maxReceiveCount"])
        return Live(props)
    if e.type == "AWS::AutoScaling::AutoScalingGroup":
        groups = clients("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[pid])
        if not groups["AutoScalingGroups"]:
            return Live(None)
        g = groups["AutoScalingGroups"][0]
        return Live({
            "MinSize": str(g["MinSize"]),
            "MaxSize": str(g["MaxSize"]),
            "NewInstancesProtectedFromScaleIn": _text(bool(g.get("NewInstancesProtectedFromScaleIn"))) or "",
        })  # fmt: skip
    if e.type == "AWS::EC2::LaunchTemplate":
        pages = clients("ec2").get_paginator("describe_launch_templates").paginate()
        found = [t for page in pages for t in page.get("LaunchTemplates", [])
                 if pid in (t["LaunchTemplateId"], t["LaunchTemplateName"])]  # fmt: skip
        return Live({} if found else None)
    if e.type == "AWS::S3::Bucket":
        clients("s3").head_bucket(Bucket=pid)
        return Live({})
    if e.type == "AWS::ECS::Cluster":
        got = clients("ecs").describe_clusters(clusters=[pid])["clusters"]
        return Live({} if any(c.get("status") == "ACTIVE" for c in got) else None)
    if e.type == "AWS::ECS::TaskDefinition":
        td = clients("ecs").describe_task_definition(taskDefinition=pid)["taskDefinition"]
        return Live({} if td.get("status", "ACTIVE") == "ACTIVE" else None)
    if e.type == "AWS::IAM::Role":
        clients("iam").get_role(RoleName=pid.rsplit("/", 1)[-1])
        return Live({})
    raise AssertionError(f"unwatched type {e.type}")


def read_live(clients: ClientFactory, expected: Iterable[Expected]) -> dict[str, Live]:
    from botocore.exceptions import BotoCoreError, ClientError

    out = {}
    for e in expected:
        try:
            out[e.logical_id] = _read_one(clients, e)
        except (ClientError, BotoCoreError) as err:
            if not _gone(err):
                raise EbbtideError(
                    f"reading {e.type} {e.physical_id}: {err}",
                    hint="check credentials, region and the doctor's read rights",
                ) from None
            out[e.logical_id] = Live(None)
    return out


@dataclass(frozen=True)
class DeployedStack:
    name: str
    status: str
    outputs: Mapping[str, str]
    template: Mapping[str, Any]
    physical: Mapping[str, str]


def read_stack(clients: ClientFactory, name: str) -> DeployedStack:
    from botocore.exceptions import BotoCoreError, ClientError

    cfn = clients("cloudformation")
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
        body = cfn.get_template(StackName=name)["TemplateBody"]
        pages = cfn.get_paginator("list_stack_resources").paginate(StackName=name)
        physical = {
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for page in pages
            for r in page.get("StackResourceSummaries", [])
            if r.get("PhysicalResourceId") and not str(r.get("ResourceStatus", "")).startswith("DELETE")
        }
    except ClientError as e:
        if "does not exist" in str(e):
            raise NotFound(
                f"stack {name} does not exist", hint="check --stack, aws.region and the endpoint"
            ) from None
        raise EbbtideError(f"reading stack {name}: {e}", hint="check credentials and region") from None
    except BotoCoreError as e:
        raise EbbtideError(f"reading stack {name}: {e}", hint="check the endpoint URL and network") from None
    s = stacks[0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in s.get("Outputs", [])}
    return DeployedStack(name, s["StackStatus"], outputs, parse_template(body), physical)


def status_findings(stack: DeployedStack) -> list[Finding]:
    """A stack that is not in a settled, successful state (pure)."""
    if stack.status in ("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"):
        return []
    return [
        Finding(
            "stack-status",
            "error" if "FAILED" in stack.status or "ROLLBACK" in stack.status else "warning",
            f"stack {stack.name} is {stack.status}",
            "its resources may be half created, half updated or rolled back to an older template",
            "see the stack's events; fix the cause and run `ebbtide aws deploy` again",
        )
    ]


def stack_findings(clients: ClientFactory, stack: DeployedStack) -> list[Finding]:
    expected = expectations(stack.template, stack.physical)
    return status_findings(stack) + compare(stack.name, expected, read_live(clients, expected))
