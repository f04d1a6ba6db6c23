"""`ebbtide aws plan` for foreign pools: the user's queue, service, group and template stay theirs.

Pure: the seeds' scaler configs (docs/examples) in, the template out, read back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ebbtide.config import Settings, load_settings
from ebbtide.deploy import iam
from ebbtide.deploy.stack import deployed_config, template
from ebbtide.errors import ConfigError
from ebbtide.fleet.foreign import sqs as foreign_sqs
from ebbtide.fleet.providers import asg, ec2, ecs_service
from ebbtide.queue import sqs_depth

DOCS = Path(__file__).resolve().parents[2] / "docs" / "examples"
OWN = {  # what a stack of ebbtide's own workers holds and a scaler-only stack must not
    "JobQueue", "DeadLetterQueue", "MediaBucket", "MediaBucketPolicy", "DataPolicy", "WorkerLogs",
    "WorkerTaskRole", "WorkerInstanceRole", "WorkerInstanceProfile",
}


def load(tmp_path: Path, name: str, **override: Any) -> tuple[dict[str, Any], Settings]:
    raw = yaml.safe_load((DOCS / name).read_text())
    raw["data_dir"] = str(tmp_path / "data")
    for section, values in override.items():
        raw[section] = {**raw.get(section, {}), **values}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return raw, load_settings(path, env={})


def settings(tmp_path: Path, **raw: Any) -> Settings:
    path = tmp_path / "ebbtide.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), **raw}))
    return load_settings(path, env={})


def policy(tpl: dict[str, Any]) -> list[dict[str, Any]]:
    return list(tpl["Resources"]["ControllerPolicy"]["Properties"]["PolicyDocument"]["Statement"])


def actions(stmts: list[dict[str, Any]]) -> set[str]:
    return {a for st in stmts for a in st["Action"]}


def granting(stmts: list[dict[str, Any]], action: str) -> dict[str, Any]:
    (st,) = [st for st in stmts if action in st["Action"]]
    return st


def test_seed_000_scaler_stack_holds_the_scaler_and_scopes_it_to_the_users_service(tmp_path: Path) -> None:
    raw, s = load(tmp_path, "seed-000-scaler.yaml")
    tpl = template(s)
    res = tpl["Resources"]
    assert not OWN & set(res)
    assert not [k for k in res if k.startswith("PoolTranscoder")]  # the user's service, not ours
    assert {"ControllerLogs", "ControllerPolicy", "ControllerService", "ControllerTask", "ControllerRole",
            "Cluster", "ConfigBucket"} <= set(res)
    services = [r["Properties"] for r in res.values() if r["Type"] == "AWS::ECS::Service"]
    assert [svc["ServiceName"] for svc in services] == ["rugbycodex-scaler-controller"]
    stmts = policy(tpl)
    probe = {"ecs:DescribeTasks", "ecs:GetTaskProtection", "ecs:UpdateTaskProtection"}
    assert actions(stmts) == set(ecs_service.ACTIONS) | probe | set(sqs_depth.ACTIONS)
    assert not [a for a in actions(stmts) if a.startswith(("autoscaling:", "ec2:", "s3:"))]
    text = json.dumps(stmts)
    assert "service/rugbycodex-cluster/rugbycodex-transcoder-service" in text
    assert "rugbycodex-scaler-transcoder" not in text  # no stack-made names
    for a in probe:
        assert json.dumps(granting(stmts, a)["Resource"]).endswith(':task/rugbycodex-cluster/*"}]')
    depth = granting(stmts, "sqs:GetQueueAttributes")
    assert depth["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:rugbycodex-transcode-jobs"}
    ]
    assert set(depth["Action"]) == {"sqs:GetQueueUrl", "sqs:GetQueueAttributes"}
    # the controller's task reads its config from the config bucket, with no media/queue rights
    role = res["ControllerRole"]["Properties"]
    assert role["ManagedPolicyArns"] == [{"Ref": "ControllerPolicy"}]
    assert "ConfigBucket" in json.dumps(role["Policies"])
    env = res["ControllerTask"]["Properties"]["ContainerDefinitions"][0]["Environment"]
    assert "ConfigBucket" in json.dumps(env) and "MediaBucket" not in json.dumps(tpl)
    # deploying it fills in the region only: the queue and the pools stay the user's
    out = deployed_config(raw, s, {"ConfigBucketName": "b", "ConfigUrl": "s3://b/k"})
    assert "queue" not in out and "store" not in out
    assert out["fleet"] == raw["fleet"] and out["aws"]["region"] == "us-east-1"
    assert tpl == template(s)


def test_seed_002_scaler_on_its_box_is_a_log_group_and_a_policy_on_the_users_template(
    tmp_path: Path,
) -> None:
    _, s = load(tmp_path, "seed-002-scaler.yaml")
    tpl = template(s)
    assert {k: v["Type"] for k, v in tpl["Resources"].items()} == {
        "ControllerLogs": "AWS::Logs::LogGroup",
        "ControllerPolicy": "AWS::IAM::ManagedPolicy",
    }
    assert "Parameters" not in tpl  # no VPC, no AMI: nothing runs in the stack
    stmts = policy(tpl)
    assert actions(stmts) == set(ec2.ACTIONS)  # BullMQ depth: no SQS, no protection calls
    assert granting(stmts, "ec2:TerminateInstances")["Condition"] == {
        "StringEquals": {"aws:ResourceTag/ebbtide:pool": "spot"}
    }
    # a template named by name (not lt-…) cannot be named in IAM: any template, then
    run = granting(stmts, "ec2:RunInstances")["Resource"][0]
    assert run["Fn::Sub"][1] == {"T": "*"}
    assert granting(stmts, "iam:PassRole")["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}
    }
    assert "LaunchTemplate" not in json.dumps(tpl["Outputs"])
    # its Redis is on the box itself: a controller on Fargate could never read it
    _, on_ecs = load(tmp_path, "seed-002-scaler.yaml", aws={"controller": "ecs"})
    with pytest.raises(ConfigError, match="cannot reach"):
        template(on_ecs)


def test_a_foreign_template_by_id_and_its_role_are_named_exactly(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        aws={"controller": "none"},
        fleet={
            "depth_source": "bullmq://redis.internal:6379/0/q",
            "pools": [{"name": "spot", "provider": "ec2", "workers": "foreign", "max": 2,
                       "options": {"launch_template": "lt-0abc", "instance_role": "worker-role"}}],
        },
    )
    stmts = policy(template(s))
    assert granting(stmts, "ec2:RunInstances")["Resource"][0]["Fn::Sub"][1] == {"T": "lt-0abc"}
    assert granting(stmts, "iam:PassRole")["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/worker-role"}
    ]


def test_a_foreign_group_on_sqs_gets_the_probes_autoscaling_calls_on_that_group(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        aws={"controller": "none"},
        fleet={
            "depth_source": "sqs://jobs",
            "pools": [{"name": "gpu", "provider": "asg", "workers": "foreign", "max": 2,
                       "options": {"asg_name": "their-gpu-asg"}}],
        },
    )
    tpl = template(s)
    assert set(tpl["Resources"]) == {"ControllerLogs", "ControllerPolicy"}
    stmts = policy(tpl)
    probe = {a for a in foreign_sqs.ACTIONS if a.startswith("autoscaling:")}
    assert actions(stmts) == set(asg.ACTIONS) | probe | set(sqs_depth.ACTIONS)
    protect = granting(stmts, "autoscaling:SetInstanceProtection")
    assert "autoScalingGroupName/their-gpu-asg" in json.dumps(protect)


def test_a_mixed_config_keeps_its_own_stack_and_adds_the_foreign_pools_statements(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        queue={"url": "sqs://own-jobs"},
        fleet={
            "depth_source": "sqs://their-jobs",
            "pools": [
                {"name": "od", "provider": "asg", "max": 2},
                {"name": "theirs", "provider": "ecs-service", "workers": "foreign", "max": 3,
                 "options": {"cluster": "their-cluster", "service": "their-svc"}},
            ],
        },
    )
    tpl = template(s)
    res = tpl["Resources"]
    assert {"JobQueue", "MediaBucket", "DataPolicy", "PoolOdGroup", "PoolOdTemplate"} <= set(res)
    assert not [k for k in res if k.startswith("PoolTheirs")]
    assert res["JobQueue"]["Properties"]["QueueName"] == "own-jobs"
    stmts = policy(tpl)
    probe = {"ecs:DescribeTasks", "ecs:GetTaskProtection", "ecs:UpdateTaskProtection"}
    assert actions(stmts) == set(asg.ACTIONS) | set(ecs_service.ACTIONS) | probe | set(sqs_depth.ACTIONS)
    assert "service/their-cluster/their-svc" in json.dumps(stmts)
    assert "their-jobs" in json.dumps(granting(stmts, "sqs:GetQueueUrl"))
    # the deployed config names the stack's resources for its own pool only
    out = deployed_config(
        {"fleet": {"pools": [p.model_dump(exclude_defaults=True) for p in s.fleet.pools]}},
        s,
        {"QueueName": "own-jobs", "BucketName": "b", "MediaPrefix": "media", "PoolOdGroup": "g"},
    )
    own, theirs = out["fleet"]["pools"]
    assert own["options"]["asg_name"] == "g"
    assert theirs["options"] == {"cluster": "their-cluster", "service": "their-svc"}


def test_every_foreign_probe_action_has_a_scoping_rule() -> None:
    assert set(foreign_sqs.ACTIONS) | set(sqs_depth.ACTIONS) <= set(iam.RULES)
    assert iam.probe_actions("ecs-service") == ("ecs:DescribeTasks", "ecs:GetTaskProtection",
                                                "ecs:UpdateTaskProtection")
    assert iam.probe_actions("ec2") == ()
