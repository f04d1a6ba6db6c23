"""AWS setups for the cloud-provider tests, made with boto3 against moto in server mode.

Every name carries a random suffix: the moto server lives for the whole session (per xdist
worker), so tests must never see each other's instances, groups or tasks.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from ebbtide.config.sections import AwsConfig, PoolConfig
from ebbtide.config.settings import Settings

REGION = "us-east-1"
MOTO_AMI = "ami-03cf127a"  # in moto's built-in image list (listing them all costs seconds)


def suffix() -> str:
    return uuid.uuid4().hex[:8]


def settings_for(endpoint: str) -> Settings:
    return Settings(aws=AwsConfig(region=REGION, endpoint_url=endpoint))


def client(service: str, endpoint: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint)  # type: ignore[call-overload]


def pool(name: str, provider: str, spot: bool = False, **options: Any) -> PoolConfig:
    raw = {"name": name, "provider": provider, "max": 10, "spot": spot, "price_per_hour": 0.1,
           "options": options}
    return PoolConfig.model_validate(raw)


@dataclass(frozen=True)
class Network:
    vpc: str
    subnets: tuple[str, ...]
    template: str  # launch template name
    template_id: str
    security_group: str


def network(endpoint: str) -> Network:
    """A VPC with two subnets (two AZs) and a launch template with an AMI moto knows."""
    ec2 = client("ec2", endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    # Fargate tasks need DNS hostnames (and moto's ECS fails a task's ENI without them)
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnets = tuple(
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
        for cidr, az in (("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b"))
    )
    name = f"ebbtide-lt-{suffix()}"
    lt = ec2.create_launch_template(
        LaunchTemplateName=name, LaunchTemplateData={"ImageId": MOTO_AMI, "InstanceType": "t3.micro"},
    )["LaunchTemplate"]
    sg = ec2.create_security_group(GroupName=f"ebbtide-{suffix()}", Description="workers", VpcId=vpc)
    return Network(vpc, subnets, name, lt["LaunchTemplateId"], sg["GroupId"])


def instances_of(endpoint: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    ec2 = client("ec2", endpoint)
    out = {}
    for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
        for i in r["Instances"]:
            out[i["InstanceId"]] = i
    return out


def asg(endpoint: str, net: Network, max_size: int = 3) -> str:
    name = f"ebbtide-asg-{suffix()}"
    client("autoscaling", endpoint).create_auto_scaling_group(
        AutoScalingGroupName=name, MinSize=0, MaxSize=max_size, DesiredCapacity=0,
        LaunchTemplate={"LaunchTemplateName": net.template, "Version": "$Default"},
        VPCZoneIdentifier=",".join(net.subnets),
    )
    return name


def cluster_with_task_definition(endpoint: str) -> tuple[str, str]:
    ecs = client("ecs", endpoint)
    cluster = f"ebbtide-{suffix()}"
    ecs.create_cluster(clusterName=cluster)
    family = f"worker-{suffix()}"
    ecs.register_task_definition(
        family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "worker", "image": "ebbtide:latest", "essential": True,
                               "memory": 512, "cpu": 256, "command": ["ebbtide", "worker"]}],
    )
    return cluster, family


class CapacityShortClient:
    """A real boto3 EC2 client except that some RunInstances calls fail for lack of capacity.

    A wrapper, not a mock of EC2: moto cannot simulate a spot shortage or an AZ out of capacity, so
    the chosen calls raise the ClientError real EC2 would send and every other call goes to moto.
    """

    def __init__(
        self, real: Any, spot: bool = False, subnets: tuple[str, ...] = (), after: int | None = None
    ) -> None:
        self.real = real
        self.spot = spot
        self.subnets = set(subnets)
        self.after = after  # fail every call after this many successes
        self.calls: list[dict[str, Any]] = []
        self.ok = 0

    def run_instances(self, **kw: Any) -> Any:
        self.calls.append(kw)
        short = (
            (self.spot and "InstanceMarketOptions" in kw)
            or kw.get("SubnetId") in self.subnets
            or (self.after is not None and self.ok >= self.after)
        )
        if short:
            code = "InsufficientInstanceCapacity"
            raise ClientError({"Error": {"Code": code, "Message": "We currently do not have sufficient "
                                         "capacity in the Availability Zone you requested."}}, "RunInstances")
        self.ok += 1
        return self.real.run_instances(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@contextmanager
def tasks_stay_running(endpoint: str) -> Iterator[None]:
    """moto moves an ECS task one lifecycle step (RUNNING → DEACTIVATING → …) on every read; hold
    tasks at RUNNING, as real ones are while they work, through moto's state-manager API."""

    def post(path: str, body: dict[str, Any]) -> None:
        req = urllib.request.Request(
            f"{endpoint}/moto-api/state-manager/{path}", data=json.dumps(body).encode(),
            method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    hold = {"progression": "manual", "times": 10**6}
    post("set-transition", {"model_name": "ecs::task", "transition": hold})
    try:
        yield
    finally:
        post("unset-transition", {"model_name": "ecs::task"})
