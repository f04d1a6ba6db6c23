"""The generator is pure: a config in, a template out. These read the template it writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ebbtide.config import Settings, load_settings
from ebbtide.deploy import iam
from ebbtide.deploy.stack import template
from ebbtide.errors import ConfigError
from ebbtide.fleet.providers import asg, ec2, ecs_service, ecs_task

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"


def settings(tmp_path: Path, **raw: Any) -> Settings:
    path = tmp_path / "ebbtide.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), **raw}))
    return load_settings(path, env={})


def pools(*items: dict[str, Any]) -> dict[str, Any]:
    return {"pools": list(items)}


def resources(tpl: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in tpl["Resources"].items() if v["Type"] == kind}


def actions(doc: dict[str, Any]) -> set[str]:
    return {a for st in doc["Statement"] for a in st["Action"]}


def test_queue_bucket_and_groups_follow_the_config(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        queue={"url": "sqs://jobs", "lease": "20m", "max_receives": 3},
        store={"url": "s3://media-b/vid"},
        web={"public_url": "https://tv.example.org/"},
        fleet=pools({"name": "od", "provider": "asg", "max": 4}),
    )
    tpl = template(s)
    queues = resources(tpl, "AWS::SQS::Queue")
    assert queues["JobQueue"]["VisibilityTimeout"] == 1200 and queues["JobQueue"]["QueueName"] == "jobs"
    assert queues["JobQueue"]["ReceiveMessageWaitTimeSeconds"] == 20
    assert queues["JobQueue"]["RedrivePolicy"]["maxReceiveCount"] == 3
    assert queues["DeadLetterQueue"]["QueueName"] == "jobs-dlq"
    bucket = resources(tpl, "AWS::S3::Bucket")["MediaBucket"]
    assert bucket["BucketName"] == "media-b"
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["CorsConfiguration"]["CorsRules"][0]["AllowedOrigins"] == ["https://tv.example.org"]
    assert bucket["LifecycleConfiguration"]["Rules"][0]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": 1
    }
    group = resources(tpl, "AWS::AutoScaling::AutoScalingGroup")["PoolOdGroup"]
    assert group["MinSize"] == "0" and group["MaxSize"] == "4" and group["NewInstancesProtectedFromScaleIn"]
    assert tpl == template(s)  # same config, same template


def test_gpu_pools_get_gpu_task_definitions_on_ec2_capacity(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        fleet=pools(
            {"name": "gpu", "provider": "ecs-service", "max": 3, "options": {"gpu": 1}},
            {"name": "cpu", "provider": "ecs-task", "max": 2, "spot": True},
        ),
    )
    tpl = template(s)
    tasks = resources(tpl, "AWS::ECS::TaskDefinition")
    gpu = tasks["PoolGpuTask"]
    assert gpu["RequiresCompatibilities"] == ["EC2"]
    assert gpu["ContainerDefinitions"][0]["ResourceRequirements"] == [{"Type": "GPU", "Value": "1"}]
    assert gpu["ContainerDefinitions"][0]["Image"] == s.aws.gpu_image
    assert tasks["PoolCpuTask"]["RequiresCompatibilities"] == ["FARGATE"]
    assert tasks["PoolCpuTask"]["ContainerDefinitions"][0]["Command"][:3] == ["ebbtide", "worker", "--once"]
    assert "PoolGpuCapacity" in resources(tpl, "AWS::ECS::CapacityProvider")
    svc = resources(tpl, "AWS::ECS::Service")["PoolGpuService"]
    assert svc["DesiredCount"] == 0
    assert "ControllerService" in resources(tpl, "AWS::ECS::Service")


def test_the_scalers_policy_is_exactly_what_the_providers_call(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        fleet=pools(
            {"name": "a", "provider": "ec2"},
            {"name": "b", "provider": "asg"},
            {"name": "c", "provider": "ecs-service"},
            {"name": "d", "provider": "ecs-task"},
            {"name": "edge", "provider": "static"},
        ),
    )
    tpl = template(s)
    policy = resources(tpl, "AWS::IAM::ManagedPolicy")["ControllerPolicy"]["PolicyDocument"]
    wanted = set(ec2.ACTIONS) | set(asg.ACTIONS) | set(ecs_service.ACTIONS) | set(ecs_task.ACTIONS)
    assert actions(policy) == wanted
    for st in policy["Statement"]:
        if st["Resource"] == "*":  # only calls IAM cannot scope by resource, or scoped by condition
            assert (
                set(st["Action"])
                <= {
                    "ec2:DescribeInstances",
                    "autoscaling:DescribeAutoScalingGroups",
                    "ecs:DescribeTaskDefinition",
                }
                or "Condition" in st
            )
        if "iam:PassRole" in st["Action"]:
            assert "iam:PassedToService" in json.dumps(st["Condition"])
        if "ec2:TerminateInstances" in st["Action"]:
            assert st["Condition"] == {"StringEquals": {"aws:ResourceTag/ebbtide:pool": "a"}}
    # no pools in the cloud: no scaler policy, no roles for it
    bare = template(
        settings(tmp_path, fleet=pools({"name": "edge", "provider": "static"}), aws={"controller": "none"})
    )
    assert "ControllerPolicy" not in bare["Resources"] and "Cluster" not in bare["Resources"]


def test_an_action_without_a_scoping_rule_fails_the_plan() -> None:
    with pytest.raises(KeyError):
        iam.statements(("ec2:RunInstances", "ec2:ModifyInstanceAttribute"), iam.Scope(pool="x"), "X")


def test_bad_deploy_options_name_the_key(tmp_path: Path) -> None:
    s = settings(tmp_path, fleet=pools({"name": "g", "provider": "ecs-task", "options": {"gpu": "many"}}))
    with pytest.raises(ConfigError, match=r"fleet.pools\[g\].options.gpu"):
        template(s)


def test_plan_prints_a_template_for_each_example(tmp_path: Path) -> None:
    for cfg in sorted(EXAMPLES.glob("*.yaml")):
        r = subprocess.run(
            [sys.executable, "-m", "ebbtide.cli.main", "--config", str(cfg), "aws", "plan"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        tpl = yaml.safe_load(r.stdout)
        assert tpl["Resources"]["JobQueue"]["Type"] == "AWS::SQS::Queue"
        assert "resources" in r.stderr  # the summary table goes to stderr, the template to stdout
