"""A scaler-only stack (seed 000: the user's ECS service on the user's SQS queue), deployed into moto.

moto in server mode, over HTTP, through CloudFormation. The user's queue, cluster and service exist
before the deploy; the stack must create none of its own and leave theirs as they were on destroy.
moto's CloudFormation skips AWS::S3::BucketPolicy and ClusterCapacityProviderAssociations (the pure
test reads those from the template) and its ECS models outlive the stack.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from ebbtide.deploy.stack import CONFIG_KEY

REGION = "us-east-1"
pytestmark = pytest.mark.xdist_group("aws-stack")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBBTIDE_")}
    return subprocess.run(
        [sys.executable, "-m", "ebbtide.cli.main", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=120,
    )


def test_a_scaler_only_stack_creates_nothing_of_the_users_and_destroy_leaves_theirs(
    moto_endpoint: str, tmp_path: Path
) -> None:
    def client(service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=moto_endpoint)  # type: ignore[call-overload]

    sfx = uuid.uuid4().hex[:6]
    name, queue, cluster, service = f"sc-{sfx}", f"jobs-{sfx}", f"cl-{sfx}", f"svc-{sfx}"
    # the user's own resources, made before ebbtide is involved
    sqs, ecs = client("sqs"), client("ecs")
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    ecs.create_cluster(clusterName=cluster)
    family = ecs.register_task_definition(
        family=f"td-{sfx}", containerDefinitions=[{"name": "w", "image": "busybox", "memory": 128}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=family, desiredCount=0)
    raw = {
        "data_dir": str(tmp_path / "data"),
        "aws": {"region": REGION, "endpoint_url": moto_endpoint, "stack_name": name},
        "fleet": {
            "depth_source": f"sqs://{queue}",
            "pools": [{"name": "transcoder", "provider": "ecs-service", "workers": "foreign", "max": 3,
                       "options": {"cluster": cluster, "service": service}}],
        },
    }
    source, out = tmp_path / "ebbtide.yaml", tmp_path / "deployed.yaml"
    source.write_text(yaml.safe_dump(raw))
    queues_before = set(sqs.list_queues().get("QueueUrls", []))

    r = cli("--config", str(source), "aws", "deploy", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    cfn = client("cloudformation")
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    kinds = {r["ResourceType"] for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]}
    assert "AWS::SQS::Queue" not in kinds and "AWS::EC2::LaunchTemplate" not in kinds
    assert set(sqs.list_queues().get("QueueUrls", [])) == queues_before  # no queue of ebbtide's
    assert "BucketName" not in outputs and "QueueName" not in outputs
    # the written config: the user's queue and service as written; uploaded for the controller
    written = yaml.safe_load(out.read_text())
    assert "queue" not in written and written["fleet"] == raw["fleet"]
    obj = client("s3").get_object(Bucket=outputs["ConfigBucketName"], Key=CONFIG_KEY)["Body"].read()
    assert yaml.safe_load(obj) == written
    # the scaler's policy, as IAM holds it, names the user's service and queue
    iam = client("iam")
    arn = outputs["ControllerPolicy"]
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    doc = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    text = str(doc)
    assert f"service/{cluster}/{service}" in text and f":{queue}" in text
    assert "ecs:GetTaskProtection" in text and "sqs:ReceiveMessage" not in text
    # the deployed config runs: status reads the user's queue, read only
    r = cli("--config", str(out), "status", "--once", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"│\s+2\s+│\s+0\s+│", r.stdout), r.stdout  # 2 visible, 0 in flight

    r = cli("--config", str(out), "aws", "destroy", cwd=tmp_path)  # no --delete-media: no media
    assert r.returncode == 0, r.stdout + r.stderr
    assert not [s for s in cfn.list_stacks()["StackSummaries"]
                if s["StackName"] == name and s["StackStatus"] != "DELETE_COMPLETE"]
    assert url in sqs.list_queues().get("QueueUrls", [])  # theirs stays, messages and all
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "2"
    assert ecs.describe_services(cluster=cluster, services=[service])["services"][0]["status"] == "ACTIVE"


def test_a_scaler_on_its_own_box_deploys_a_log_group_and_a_policy_only(
    moto_endpoint: str, tmp_path: Path
) -> None:
    """Seed 002's shape: the user's launch template, BullMQ on the box; nothing to upload."""
    cfn = boto3.client("cloudformation", region_name=REGION, endpoint_url=moto_endpoint)  # type: ignore[call-overload]
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint)  # type: ignore[call-overload]
    name = f"box-{uuid.uuid4().hex[:6]}"
    raw = {
        "data_dir": str(tmp_path / "data"),
        "aws": {"region": REGION, "endpoint_url": moto_endpoint, "stack_name": name, "controller": "none"},
        "fleet": {
            "depth_source": "bullmq://127.0.0.1:6379/0/videoProcessingQueue",
            "pools": [{"name": "spot", "provider": "ec2", "workers": "foreign", "spot": True, "max": 2,
                       "options": {"launch_template": "scalereach-worker-spot-template"}}],
        },
    }
    source, out = tmp_path / "ebbtide.yaml", tmp_path / "deployed.yaml"
    source.write_text(yaml.safe_dump(raw))
    buckets_before = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    r = cli("--config", str(source), "aws", "deploy", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "s3://" not in r.stdout  # nothing uploaded
    summaries = cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
    assert sorted(r["ResourceType"] for r in summaries) == ["AWS::IAM::ManagedPolicy", "AWS::Logs::LogGroup"]
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == buckets_before
    written = yaml.safe_load(out.read_text())
    assert written["fleet"] == raw["fleet"] and "queue" not in written and "store" not in written
    r = cli("--config", str(out), "aws", "destroy", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
