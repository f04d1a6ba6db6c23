"""`ebbtide doctor --aws` against moto in server mode (over HTTP, through boto3): an account set up
like seed 000's current settings must show the same four critical issues as the config doctor."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
import typer
from typer.testing import CliRunner

from ebbtide.cli import doctor_cmd
from ebbtide.config import load_settings
from ebbtide.doctor.aws import boto_clients, diagnose_aws, read_setup
from ebbtide.doctor.checks import diagnose
from ebbtide.errors import EbbtideError, NotFound

REGION = "us-east-1"
SEED_000 = Path(__file__).resolve().parents[2] / "docs" / "examples" / "seed-000-current.yaml"
CRITICAL = {"lease-short", "scale-in-busy", "step-table-short", "no-long-polling"}


def _c(service: str, endpoint: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint)  # type: ignore[call-overload]


def seed_000_account(endpoint: str, visibility: int = 600, wait: int = 0, top: int = 2,
                     scale_in_cooldown: int = 300) -> dict[str, str]:
    """Seed 000 "actual": SQS 10-min visibility, no long polling, DLQ after 3; ASG 0-3 with the
    step table 1→1, 2+→2 and a scale-to-zero alarm of 10 x 60 s; ECS target tracking on visible
    messages, target 1, scale-in cooldown 5 min."""
    s = uuid.uuid4().hex[:8]
    sqs = _c("sqs", endpoint)
    dlq = sqs.create_queue(QueueName=f"rc-dlq-{s}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName=f"rugbycodex-transcode-jobs-{s}",
        Attributes={
            "VisibilityTimeout": str(visibility),
            "ReceiveMessageWaitTimeSeconds": str(wait),
            "MessageRetentionPeriod": str(4 * 86400),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}),
        },
    )["QueueUrl"]
    asg = _c("autoscaling", endpoint)
    name = f"rugbycodex-gpu-asg-{s}"
    asg.create_launch_configuration(LaunchConfigurationName=f"lc-{s}", ImageId="ami-03cf127a",
                                    InstanceType="g4dn.xlarge")
    asg.create_auto_scaling_group(AutoScalingGroupName=name, LaunchConfigurationName=f"lc-{s}", MinSize=0,
                                  MaxSize=3, DesiredCapacity=0, AvailabilityZones=[f"{REGION}a"],
                                  DefaultCooldown=300)
    steps = [{"MetricIntervalUpperBound": 1.0, "ScalingAdjustment": 0}]
    for depth in range(1, top):
        steps.append({"MetricIntervalLowerBound": float(depth), "MetricIntervalUpperBound": float(depth + 1),
                      "ScalingAdjustment": depth})
    steps.append({"MetricIntervalLowerBound": float(top), "ScalingAdjustment": top})
    asg.put_scaling_policy(AutoScalingGroupName=name, PolicyName="rugbycodex-step-scale-on-queue-depth",
                           PolicyType="StepScaling", AdjustmentType="ExactCapacity",
                           MetricAggregationType="Maximum", StepAdjustments=steps)
    asg.put_scaling_policy(AutoScalingGroupName=name, PolicyName="rugbycodex-scale-to-zero",
                           PolicyType="SimpleScaling", AdjustmentType="ExactCapacity", ScalingAdjustment=0)
    arns = {p["PolicyName"]: p["PolicyARN"]
            for p in asg.describe_policies(AutoScalingGroupName=name)["ScalingPolicies"]}
    up, zero = arns["rugbycodex-step-scale-on-queue-depth"], arns["rugbycodex-scale-to-zero"]
    cw = _c("cloudwatch", endpoint)
    dims = [{"Name": "QueueName", "Value": url.rsplit("/", 1)[1]}]
    cw.put_metric_alarm(AlarmName=f"up-{s}", MetricName="ApproximateNumberOfMessagesVisible",
                        Namespace="AWS/SQS", Statistic="Maximum", Period=60, EvaluationPeriods=1, Threshold=0,
                        ComparisonOperator="GreaterThanThreshold", Dimensions=dims, AlarmActions=[up])
    cw.put_metric_alarm(AlarmName=f"zero-{s}", MetricName="ApproximateNumberOfMessagesVisible",
                        Namespace="AWS/SQS", Statistic="Maximum", Period=60, EvaluationPeriods=10,
                        Threshold=0, ComparisonOperator="LessThanOrEqualToThreshold", Dimensions=dims,
                        AlarmActions=[zero])
    ecs = _c("ecs", endpoint)
    cluster, service = f"rugbycodex-cluster-{s}", "rugbycodex-transcoder-service"
    ecs.create_cluster(clusterName=cluster)
    td = ecs.register_task_definition(
        family=f"rugbycodex-transcoder-{s}",
        containerDefinitions=[{"name": "worker", "image": "ebbtide:latest", "memory": 15360}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=td, desiredCount=0)
    aas = _c("application-autoscaling", endpoint)
    rid = f"service/{cluster}/{service}"
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=rid,
                                 ScalableDimension="ecs:service:DesiredCount", MinCapacity=0, MaxCapacity=3)
    aas.put_scaling_policy(
        PolicyName="rugbycodex-ecs-queue-tracking", ServiceNamespace="ecs", ResourceId=rid,
        ScalableDimension="ecs:service:DesiredCount", PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 1.0,
            "CustomizedMetricSpecification": {"MetricName": "ApproximateNumberOfMessagesVisible",
                                              "Namespace": "AWS/SQS", "Dimensions": dims,
                                              "Statistic": "Average"},
            "ScaleOutCooldown": 60,
            "ScaleInCooldown": scale_in_cooldown,
        },
    )
    return {"queue_url": url, "asg": name, "cluster": cluster, "service": service}


def test_seed_000_account_reports_the_same_four_critical_issues(moto_endpoint: str, tmp_path: Path) -> None:
    acct = seed_000_account(moto_endpoint)
    setup = read_setup(boto_clients(REGION, moto_endpoint), **acct)
    assert (setup.visibility_timeout, setup.wait, setup.max_receives) == (600, 0, 3)
    assert setup.asg_max == 3 and setup.ecs_max == 3 and setup.scale_to_zero_after == 600
    assert [(r.at_least, r.capacity) for r in setup.steps or ()] == [(0, 0), (1, 1), (2, 2)]
    assert setup.ecs_policy is not None and setup.ecs_policy.scale_in_cooldown == 300
    base = load_settings(env={}, overrides={"data_dir": str(tmp_path)})
    from_aws = diagnose_aws(setup, base, speed=6.0)
    codes = {f.code for f in from_aws}
    assert codes >= CRITICAL
    errors = {f.code for f in from_aws if f.severity == "error"}
    assert errors >= {"lease-short", "scale-in-busy", "step-table-short"}
    # one set of checks, two sources: the config written like the same account says the same
    from_config = diagnose(load_settings(SEED_000, env={}, overrides={"data_dir": str(tmp_path)}))
    assert {f.code for f in from_config} >= CRITICAL


def test_recommended_account_keeps_only_what_the_seed_leaves_open(moto_endpoint: str, tmp_path: Path) -> None:
    """Seed 000 "recommended": 20-min visibility, 20 s polling, steps to 3, scale-in cooldown 25 min.
    The step table and polling findings go; a 2-hour match still outlives the 20-min visibility
    without a heartbeat (the seed's own "long jobs may still duplicate"), and workers that extend
    their lease clear that too."""
    acct = seed_000_account(moto_endpoint, visibility=1200, wait=20, top=3, scale_in_cooldown=1500)
    setup = read_setup(boto_clients(REGION, moto_endpoint), **acct)
    base = load_settings(env={}, overrides={"data_dir": str(tmp_path)})
    codes = {f.code for f in diagnose_aws(setup, base, speed=6.0)}
    assert "step-table-short" not in codes and "no-long-polling" not in codes
    assert "lease-short" in codes
    codes = {f.code for f in diagnose_aws(setup, base, heartbeat=True, speed=6.0)}
    assert "lease-short" not in codes and "scale-in-busy" not in codes


def test_missing_resources_are_clear_errors(moto_endpoint: str) -> None:
    clients = boto_clients(REGION, moto_endpoint)
    with pytest.raises(NotFound) as e:
        read_setup(clients, asg=f"nope-{uuid.uuid4().hex[:6]}")
    assert e.value.hint
    with pytest.raises(EbbtideError) as e2:
        read_setup(clients, queue_url=f"{moto_endpoint}/123456789012/nope-{uuid.uuid4().hex[:6]}")
    assert e2.value.hint
    with pytest.raises(EbbtideError):
        read_setup(clients)


def test_cli_doctor_aws(moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    acct = seed_000_account(moto_endpoint)
    app = typer.Typer()
    doctor_cmd.register(app)
    app.command("noop")(lambda: None)
    res = CliRunner().invoke(app, [
        "doctor", "--aws", "--endpoint-url", moto_endpoint, "--region", REGION, "--json",
        "--queue-url", acct["queue_url"], "--asg", acct["asg"],
        "--cluster", acct["cluster"], "--service", acct["service"],
    ])
    assert res.exit_code == 1, res.output
    assert {f["code"] for f in json.loads(res.output)} >= CRITICAL
