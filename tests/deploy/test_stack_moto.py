"""The generated stack, deployed into moto (server mode, over HTTP) through CloudFormation.

One stack per module (moto's CloudFormation is the slow part). With it: the real `ebbtide scaler`
launches a spot instance from the stack's launch template; a real `ebbtide worker` process plays
that instance (EBBTIDE_PROVIDER_ID = the moto instance id, config pulled from the stack's bucket as
the boot script does) and transcodes a generated clip through the stack's SQS queue and S3 bucket;
the fleet goes back to zero; `doctor --aws` finds nothing; `destroy` removes everything.

What moto's CloudFormation cannot show, and is checked on the template instead: it skips
AWS::S3::BucketPolicy and AWS::ECS::ClusterCapacityProviderAssociations ("No Moto CloudFormation
support") and ignores the bucket's CORS, lifecycle and public-access-block properties; it does not
copy a launch template's instance profile onto the instance; its ECS models are not deleted with
the stack. No real
EC2 machine boots, so the boot script itself is checked as text (and by the images' tests).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from ebbtide.catalog.states import MediaState
from ebbtide.config import Settings, load_settings
from ebbtide.deploy.stack import CONFIG_KEY
from ebbtide.fleet.providers.aws import TAG_POOL, TAG_WORKER
from ebbtide.media.samples import generate_clip
from ebbtide.services import open_services
from ebbtide.worker.intake import submit_file

REGION = "us-east-1"
MOTO_AMI = "ami-03cf127a"
pytestmark = pytest.mark.xdist_group("aws-stack")


def wait_for(check: Any, timeout: float, what: str, step: float = 0.2) -> Any:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("EBBTIDE_")}
    return subprocess.run(
        [sys.executable, "-m", "ebbtide.cli.main", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        cwd=cwd,
        timeout=120,
    )


@dataclass
class Deployed:
    endpoint: str
    name: str
    source: Path  # the config the user wrote
    config: Path  # the one deploy wrote
    settings: Settings
    outputs: dict[str, str]
    root: Path

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def stack(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    root = tmp_path_factory.mktemp("stack")
    sfx = uuid.uuid4().hex[:6]
    name = f"e2e-{sfx}"
    raw = {
        "data_dir": str(root / "data"),
        "queue": {"url": f"sqs://{name}-jobs", "wait": 1, "lease": 3, "max_receives": 4},
        "catalog": {"url": f"sqlite:///{root / 'catalog.db'}"},
        "worker": {"lease": 3, "spot_watch": "off", "ecs_protection": "off"},
        "media": {"rungs": [{"height": 144, "bitrate_kbps": 200}]},
        "aws": {"region": REGION, "endpoint_url": moto_endpoint, "stack_name": name, "ami": MOTO_AMI},
        "fleet": {
            "interval": 0.3,
            "drain_idle_after": 1,
            "policy": {"kind": "deadline", "target_ready": "4s"},
            "pools": [
                {
                    "name": "spot",
                    "provider": "ec2",
                    "spot": True,
                    "max": 1,
                    "boot_time": 2,
                    "price_per_hour": 0.2,
                },
                {"name": "batch", "provider": "ecs-task", "max": 1, "boot_time": 30, "price_per_hour": 9.0},
            ],
        },
    }
    source = root / "ebbtide.yaml"
    source.write_text(yaml.safe_dump(raw))
    out = root / "deployed.yaml"
    r = cli("--config", str(source), "aws", "deploy", "--out", str(out), cwd=root)
    assert r.returncode == 0, r.stdout + r.stderr
    cfn = boto3.client("cloudformation", region_name=REGION, endpoint_url=moto_endpoint)
    described = cfn.describe_stacks(StackName=name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    deployed = Deployed(moto_endpoint, name, source, out, load_settings(out, env={}), outputs, root)
    try:
        yield deployed
    finally:
        if _stack_exists(cfn, name):  # a failed test must not leave the stack behind
            cli("--config", str(out), "aws", "destroy", "--delete-media")


def _stack_exists(cfn: Any, name: str) -> bool:
    live = [
        s
        for s in cfn.list_stacks()["StackSummaries"]
        if s["StackName"] == name and s["StackStatus"] != "DELETE_COMPLETE"
    ]
    return bool(live)


def test_the_stack_holds_the_queue_the_bucket_and_the_pools_the_config_names(stack: Deployed) -> None:
    sqs = stack.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=stack.outputs["QueueUrl"], AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "3"  # from the lease
    assert attrs["ReceiveMessageWaitTimeSeconds"] == "20"
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["maxReceiveCount"] == 4 and redrive["deadLetterTargetArn"].endswith(
        f"{stack.name}-jobs-dlq"
    )
    # the written config points at the stack's resources and is what the workers pull
    s = stack.settings
    assert s.queue.url == f"sqs://{stack.name}-jobs"
    assert s.store.url == f"s3://{stack.outputs['BucketName']}/media"
    spot, batch = s.fleet.pools
    assert spot.options["launch_template"] == f"{stack.name}-spot" and spot.options["user_data"] == "template"
    assert (
        batch.options["cluster"] == stack.name and batch.options["task_definition"] == f"{stack.name}-batch"
    )
    body = stack.client("s3").get_object(Bucket=stack.outputs["BucketName"], Key=CONFIG_KEY)["Body"].read()
    assert yaml.safe_load(body) == yaml.safe_load(stack.config.read_text())
    # ECS: the cluster, the single-run task definition, the controller's own service
    ecs = stack.client("ecs")
    td = ecs.describe_task_definition(taskDefinition=f"{stack.name}-batch")["taskDefinition"]
    assert td["containerDefinitions"][0]["command"] == ["ebbtide", "worker", "--once", "--pool", "batch"]
    svc = ecs.describe_services(cluster=stack.name, services=[stack.outputs["ControllerService"]])["services"]
    assert svc and svc[0]["desiredCount"] == 1
    # the launch template: IMDSv2 with instance tags, the boot script for this pool
    lt = stack.client("ec2").describe_launch_template_versions(LaunchTemplateName=f"{stack.name}-spot")
    data = lt["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    script = base64.b64decode(data["UserData"]).decode()
    assert f"ebbtide aws pull-config s3://{stack.outputs['BucketName']}/{CONFIG_KEY}" in script
    assert 'exec runuser -u ebbtide -- env PATH="$PATH" ebbtide worker --pool spot' in script


def test_a_clip_runs_on_a_spot_instance_of_the_stack_and_the_fleet_returns_to_zero(
    stack: Deployed, tmp_path: Path
) -> None:
    env = {"EBBTIDE_CONFIG": str(stack.config)}
    log = (tmp_path / "scaler.log").open("wb")
    base = {k: v for k, v in os.environ.items() if not k.startswith("EBBTIDE_")}
    scaler = subprocess.Popen(
        [sys.executable, "-m", "ebbtide.cli.main", "scaler"],
        env={**base, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    worker: subprocess.Popen[bytes] | None = None
    services = open_services(stack.settings)
    ec2 = stack.client("ec2")

    def spot_instances(states: tuple[str, ...] = ("pending", "running")) -> list[dict[str, Any]]:
        pages = ec2.describe_instances(
            Filters=[
                {"Name": f"tag:{TAG_POOL}", "Values": ["spot"]},
                {"Name": "instance-state-name", "Values": list(states)},
            ]
        )
        return [i for r in pages["Reservations"] for i in r["Instances"]]

    try:
        wait_for(lambda: services.catalog.recent_decisions(), 30, "the scaler's first decision")
        assert spot_instances() == []
        user = services.catalog.create_user(f"u{uuid.uuid4().hex[:6]}")
        clip = generate_clip(tmp_path / "clip.mp4", seconds=1, width=160, height=120)
        media = submit_file(services, clip, user.id, "clip")

        inst = wait_for(spot_instances, 30, "a spot instance")[0]
        tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
        # (InstanceLifecycle=spot is asserted by tests/fleet's provider test: under load, moto
        # intermittently answers a RunInstances through a CloudFormation-made template without it)
        assert tags[TAG_POOL] == "spot" and tags[TAG_WORKER].startswith("spot-")
        lt_id = ec2.describe_launch_templates(LaunchTemplateNames=[f"{stack.name}-spot"])["LaunchTemplates"][
            0
        ]
        assert tags.get("aws:ec2launchtemplate:id") == lt_id["LaunchTemplateId"]
        assert inst["ImageId"] == MOTO_AMI
        # moto does not copy a template's instance profile onto the instance (real EC2 does); the
        # instance names the template, and the template version it used names the profile
        version = ec2.describe_launch_template_versions(
            LaunchTemplateId=lt_id["LaunchTemplateId"],
            Versions=[tags["aws:ec2launchtemplate:version"]],
        )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
        assert version["IamInstanceProfile"]["Arn"] == stack.outputs["WorkerInstanceProfile"]

        # the instance's boot: pull the deployed config from the bucket, run the worker as itself
        pulled = tmp_path / "etc" / "ebbtide.yaml"
        r = cli(
            "aws",
            "pull-config",
            stack.outputs["ConfigUrl"],
            str(pulled),
            "--region",
            REGION,
            "--endpoint-url",
            stack.endpoint,
        )
        assert r.returncode == 0, r.stderr
        assert oct(pulled.stat().st_mode & 0o777) == "0o600"
        wenv = {
            **base,
            "EBBTIDE_CONFIG": str(pulled),
            "EBBTIDE_POOL": "spot",
            "EBBTIDE_WORKER_ID": tags[TAG_WORKER],
            "EBBTIDE_PROVIDER_ID": inst["InstanceId"],
        }
        worker = subprocess.Popen(
            [sys.executable, "-m", "ebbtide.cli.main", "worker", "--pool", "spot", "--idle-exit", "30s"],
            env=wenv,
            stdout=(tmp_path / "worker.log").open("wb"),
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )

        def done() -> bool:
            state = services.catalog.get_media(media.id).state
            assert state != MediaState.FAILED
            return state == MediaState.COMPLETE

        wait_for(done, 90, "the clip to complete")
        jobs = services.catalog.list_jobs()
        assert {j.worker_id for j in jobs if j.media_id == media.id} == {tags[TAG_WORKER]}
        keys = [
            o["Key"]
            for o in stack.client("s3").list_objects_v2(Bucket=stack.outputs["BucketName"], Prefix="media/")[
                "Contents"
            ]
        ]
        assert any(k.endswith(".m3u8") for k in keys) and any(k.endswith(".m4s") for k in keys)

        # the idle worker is retired: the instance is terminated, no spot instance is left
        wait_for(lambda: spot_instances() == [], 30, "the fleet back at zero")
        assert [i["InstanceId"] for i in spot_instances(("shutting-down", "terminated"))] == [
            inst["InstanceId"]
        ]
        # the retire is recorded once the tick that made it ends
        wait_for(
            lambda: any(d.retired and d.pool == "spot" for d in services.catalog.recent_decisions(200)),
            10,
            "the retire decision",
        )
        assert services.catalog.recent_decisions(1)[0].desired == 0
    finally:
        for proc in (p for p in (worker, scaler) if p is not None):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        services.close()
    for proc in (worker, scaler):
        assert proc is not None and proc.returncode == 0, (tmp_path / "scaler.log").read_text()[-2000:]


def test_doctor_finds_nothing_on_the_deployed_stack(stack: Deployed) -> None:
    r = cli(
        "--config",
        str(stack.config),
        "doctor",
        "--aws",
        "--queue-url",
        stack.outputs["QueueUrl"],
        "--workers-heartbeat",
        "--json",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout) == []


def test_doctor_reads_the_stack_by_name_and_finds_no_drift(stack: Deployed) -> None:
    r = cli("--config", str(stack.config), "doctor", "--aws", "--stack", stack.name, "--workers-heartbeat",
            "--json")  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout) == []


def test_doctor_reports_a_stack_changed_by_hand(stack: Deployed) -> None:
    """Runs after the clip (it breaks the spot pool): the queue's visibility raised in the console,
    the spot pool's launch template deleted. Both are put back so `destroy` sees the stack it made."""
    sqs, ec2 = stack.client("sqs"), stack.client("ec2")
    url = stack.outputs["QueueUrl"]
    lt_name = f"{stack.name}-spot"
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "60"})
    ec2.delete_launch_template(LaunchTemplateName=lt_name)
    try:
        r = cli("--config", str(stack.config), "doctor", "--aws", "--stack", stack.name,
                "--workers-heartbeat", "--json")  # fmt: skip
        assert r.returncode == 1, r.stdout + r.stderr
        findings = json.loads(r.stdout)
        drift = [f for f in findings if f["code"] == "stack-drift"]
        missing = [f for f in findings if f["code"] == "stack-missing"]
        assert len(drift) == 1 and "VisibilityTimeout is 60, the stack says 3" in drift[0]["what"], findings
        assert len(missing) == 1 and "AWS::EC2::LaunchTemplate" in missing[0]["what"], findings
        assert all(f["severity"] == "error" for f in drift + missing)
        # the human form names the stack and the fix
        r = cli("--config", str(stack.config), "doctor", "--aws", "--stack", stack.name,
                "--workers-heartbeat")  # fmt: skip
        assert r.returncode == 1 and "ebbtide aws deploy" in r.stdout and stack.name in r.stdout
    finally:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "3"})
        ec2.create_launch_template(LaunchTemplateName=lt_name, LaunchTemplateData={"ImageId": MOTO_AMI})


def test_the_images_entrypoint_runs_its_command_on_the_deployed_config(
    stack: Deployed, tmp_path: Path
) -> None:
    """deploy/docker-entrypoint.sh as the ECS tasks run it (EBBTIDE_CONFIG_URL from the task definition)."""
    script = Path(__file__).resolve().parents[2] / "deploy" / "docker-entrypoint.sh"
    base = {k: v for k, v in os.environ.items() if not k.startswith("EBBTIDE_")}
    env = {
        **base,
        "HOME": str(tmp_path),
        "EBBTIDE_CONFIG_URL": stack.outputs["ConfigUrl"],
        "AWS_ENDPOINT_URL": stack.endpoint,
        "AWS_REGION": REGION,
        "PATH": f"{Path(sys.executable).parent}:{base['PATH']}",
    }
    r = subprocess.run(
        ["sh", str(script), "ebbtide", "config", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "config OK" in r.stdout and f"sqs://{stack.name}-jobs" in r.stdout
    assert oct((tmp_path / "ebbtide.yaml").stat().st_mode & 0o777) == "0o600"


def test_destroy_removes_everything(stack: Deployed) -> None:
    # media is never deleted by accident: a bucket that holds objects stops destroy
    r = cli("--config", str(stack.config), "aws", "destroy")
    assert r.returncode == 2 and "--delete-media" in r.stderr
    cfn = stack.client("cloudformation")
    assert _stack_exists(cfn, stack.name)

    r = cli("--config", str(stack.config), "aws", "destroy", "--delete-media")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not _stack_exists(cfn, stack.name)
    buckets = [b["Name"] for b in stack.client("s3").list_buckets()["Buckets"]]
    assert stack.outputs["BucketName"] not in buckets
    queues = stack.client("sqs").list_queues(QueueNamePrefix=stack.name).get("QueueUrls", [])
    assert queues == []
    lts = stack.client("ec2").describe_launch_templates()["LaunchTemplates"]
    assert not [t for t in lts if t["LaunchTemplateName"].startswith(stack.name)]
    roles = stack.client("iam").list_roles()["Roles"]
    assert not [r for r in roles if r["RoleName"].startswith(stack.name)]
    # not checked: moto's ECS cluster, task definition and service models have no CloudFormation
    # delete, so moto keeps them after the stack is gone (real CloudFormation deletes them)
