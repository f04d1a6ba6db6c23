"""The EC2, Auto Scaling, ECS-service and ECS-task providers against moto in server mode, over HTTP.

Everything (VPC, subnets, launch template, group, cluster, service, task definition) is created
with boto3 in the test itself. Where moto cannot play AWS (a spot or AZ capacity shortage, an ECS
service starting its own tasks) the test says so and does the smallest thing instead.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_env import (
    CapacityShortClient,
    asg,
    client,
    cluster_with_task_definition,
    instances_of,
    network,
    pool,
    settings_for,
    suffix,
    tasks_stay_running,
)
from fleet_fakes import FakeQueue, FakeRecorder, FakeWorkers

from ebbtide.clock import VirtualClock
from ebbtide.config.sections import DeadlinePolicyConfig
from ebbtide.errors import ConfigError
from ebbtide.fleet.controller import Controller
from ebbtide.fleet.policies import policy_for
from ebbtide.fleet.providers import Provider, provider_for
from ebbtide.fleet.providers.asg import AsgProvider
from ebbtide.fleet.providers.aws import CloudError, started_by
from ebbtide.fleet.providers.ec2 import Ec2Provider
from ebbtide.fleet.providers.ecs_service import EcsServiceProvider
from ebbtide.fleet.providers.ecs_task import EcsTaskProvider

CLOCK = VirtualClock()


# EC2 -------------------------------------------------------------------------------------------
def test_ec2_launches_tagged_instances_that_a_restarted_controller_adopts(moto_endpoint: str) -> None:
    net = network(moto_endpoint)
    s = settings_for(moto_endpoint)
    name, other = f"od-{suffix()}", f"od-{suffix()}"
    cfg = pool(name, "ec2", launch_template=net.template, subnets=list(net.subnets), instance_type="t3.small")
    provider = provider_for(cfg, s, CLOCK)
    assert isinstance(provider, Ec2Provider)

    res = provider.launch(3)
    assert res.error is None and res.launched == 3
    ids = [i.id for i in res.instances]
    wids = {i.worker_id for i in res.instances}
    raw = instances_of(moto_endpoint, ids)
    ec2 = client("ec2", moto_endpoint)
    for inst in res.instances:
        tags = {t["Key"]: t["Value"] for t in raw[inst.id]["Tags"]}
        assert tags["ebbtide:pool"] == name and tags["ebbtide:worker-id"] == inst.worker_id
        assert raw[inst.id]["InstanceType"] == "t3.small"
        assert raw[inst.id].get("InstanceLifecycle") != "spot"
        # the user data tells the worker its id, pool and instance id (via IMDSv2)
        ud = ec2.describe_instance_attribute(InstanceId=inst.id, Attribute="userData")["UserData"]["Value"]
        script = base64.b64decode(ud).decode()
        assert f"EBBTIDE_WORKER_ID={inst.worker_id}" in script and f"EBBTIDE_POOL={name}" in script
        assert "EBBTIDE_PROVIDER_ID=$INSTANCE_ID" in script and f"exec ebbtide worker --pool {name}" in script
    # launches are spread over the subnets (AZs)
    assert {raw[i]["SubnetId"] for i in ids} == set(net.subnets)

    # another pool's instance, to prove tags keep pools apart
    stranger = provider_for(pool(other, "ec2", launch_template=net.template_id), s, CLOCK).launch(1)
    assert stranger.launched == 1
    stranger_id = stranger.instances[0].id

    # a restarted controller's provider finds the same instances by tag, with their worker ids
    again = provider_for(cfg, s, CLOCK)
    found = again.inventory()
    assert {i.id for i in found} == set(ids)
    assert {i.worker_id for i in found} == wids
    assert all(i.state in ("pending", "running") and i.pool == name for i in found)

    # retire removes only the named instance; a stranger's id is refused
    assert again.retire([ids[0], stranger_id]) == [ids[0]]
    assert {i.id for i in again.inventory()} == set(ids[1:])
    states = {k: v["State"]["Name"] for k, v in instances_of(moto_endpoint, [ids[0], stranger_id]).items()}
    assert states[ids[0]] in ("shutting-down", "terminated")
    assert states[stranger_id] in ("pending", "running")


def test_ec2_spot_pool_asks_for_spot_and_reports_it(moto_endpoint: str) -> None:
    net = network(moto_endpoint)
    cfg = pool(f"spot-{suffix()}", "ec2", spot=True, launch_template=net.template, spot_max_price="0.05",
               user_data="template")
    provider = provider_for(cfg, settings_for(moto_endpoint), CLOCK)
    res = provider.launch(2)
    assert res.launched == 2 and res.error is None
    raw = instances_of(moto_endpoint, [i.id for i in res.instances])
    assert all(r["InstanceLifecycle"] == "spot" for r in raw.values())
    assert all(i.spot for i in provider.inventory())
    assert len(provider.inventory()) == 2
    req = Ec2Provider(cfg, settings_for(moto_endpoint), CLOCK).request("w-1", None)
    assert req["InstanceMarketOptions"]["SpotOptions"]["MaxPrice"] == "0.05"
    assert "UserData" not in req  # user_data: template keeps the template's own


def test_ec2_capacity_errors_come_back_in_the_result_with_what_launched(moto_endpoint: str) -> None:
    """moto cannot run out of capacity: a wrapper around the real client fails the chosen calls."""
    net = network(moto_endpoint)
    s = settings_for(moto_endpoint)
    cfg = pool(f"cap-{suffix()}", "ec2", launch_template=net.template, subnets=list(net.subnets))

    # AZ a is full: every launch moves on to AZ b and succeeds there
    real = client("ec2", moto_endpoint)
    az_full = CapacityShortClient(real, subnets=(net.subnets[0],))
    res = Ec2Provider(cfg, s, CLOCK, client=az_full).launch(2)
    assert res.launched == 2 and res.error is None
    assert {r["SubnetId"] for r in instances_of(moto_endpoint, [i.id for i in res.instances]).values()} == {
        net.subnets[1]}

    # the region runs dry after one more: the result carries that one and the error, nothing raises
    dry = CapacityShortClient(real, after=1)
    res = Ec2Provider(cfg, s, CLOCK, client=dry).launch(3)
    assert res.launched == 1 and res.short == 2
    assert res.error is not None and "InsufficientInstanceCapacity" in res.error and "next pool" in res.error

    # a launch template that does not exist: reported, not raised
    bad = pool(f"bad-{suffix()}", "ec2", launch_template=f"missing-{suffix()}")
    res = provider_for(bad, s, CLOCK).launch(2)
    assert res.launched == 0 and res.error and "LaunchTemplate" in res.error


# Auto Scaling group ----------------------------------------------------------------------------
def test_asg_desired_capacity_protection_and_named_retire(moto_endpoint: str) -> None:
    net = network(moto_endpoint)
    group = asg(moto_endpoint, net, max_size=3)
    s = settings_for(moto_endpoint)
    cfg = pool(f"asg-{suffix()}", "asg", asg_name=group, asg_steps=["1:1", "2:2"])
    provider = provider_for(cfg, s, CLOCK)
    assert isinstance(provider, AsgProvider)
    api = client("autoscaling", moto_endpoint)

    def described() -> dict[str, Any]:
        g = api.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
        return dict(g)

    res = provider.launch(2)
    assert res.error is None and res.launched == 2
    assert described()["DesiredCapacity"] == 2
    ids = sorted(i.id for i in provider.inventory())
    assert len(ids) == 2 and all(i.startswith("i-") for i in ids)
    assert sorted(i.id for i in res.instances) == ids

    # capped at the group's max: one more launches, the rest is reported
    res = provider.launch(5)
    assert res.launched == 1 and res.short == 4 and res.error and "max size 3" in res.error
    assert described()["DesiredCapacity"] == 3
    again = AsgProvider(cfg, s, CLOCK)  # a restarted controller
    ids = sorted(i.id for i in again.inventory())
    assert len(ids) == 3

    # busy instances are protected from scale-in, idle ones not
    assert again.protect([ids[0]], True) == [ids[0]]
    prot = {i["InstanceId"]: i["ProtectedFromScaleIn"] for i in described()["Instances"]}
    assert prot[ids[0]] is True and prot[ids[1]] is False
    on, off = again.sync_protection({ids[1]})
    assert on == [ids[1]] and off == [ids[0]]
    prot = {i["InstanceId"]: i["ProtectedFromScaleIn"] for i in described()["Instances"]}
    assert prot == {ids[0]: False, ids[1]: True, ids[2]: False}

    # retire terminates exactly the named idle instance and lowers the desired capacity with it
    assert again.retire([ids[2], "i-00000000000000000"]) == [ids[2]]
    g = described()
    assert g["DesiredCapacity"] == 2
    assert sorted(i["InstanceId"] for i in g["Instances"]) == ids[:2]
    assert sorted(i.id for i in again.inventory()) == ids[:2]


def test_asg_missing_group_is_a_launch_error_and_a_cloud_error(moto_endpoint: str) -> None:
    cfg = pool(f"asg-{suffix()}", "asg", asg_name=f"nope-{suffix()}")
    provider = provider_for(cfg, settings_for(moto_endpoint), CLOCK)
    res = provider.launch(1)
    assert res.launched == 0 and res.error and "not found" in res.error
    with pytest.raises(CloudError) as e:
        provider.inventory()
    assert e.value.hint and "asg_name" in e.value.hint


# ECS service -----------------------------------------------------------------------------------
@pytest.fixture()
def running_tasks(moto_endpoint: str) -> Iterator[None]:
    with tasks_stay_running(moto_endpoint):
        yield


@pytest.mark.usefixtures("running_tasks")
def test_ecs_service_desired_count_follows_launch_and_retire(moto_endpoint: str) -> None:
    """moto's ECS services never start tasks, so the test starts the service's tasks itself with
    RunTask(group="service:<name>"), which is how ECS labels a service's tasks."""
    cluster, family = cluster_with_task_definition(moto_endpoint)
    service = f"svc-{suffix()}"
    ecs = client("ecs", moto_endpoint)
    ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=family, desiredCount=0,
                       launchType="FARGATE")
    cfg = pool(f"svc-{suffix()}", "ecs-service", cluster=cluster, service=service)
    provider = provider_for(cfg, settings_for(moto_endpoint), CLOCK)
    assert isinstance(provider, EcsServiceProvider) and provider.retires_specific is False

    def desired() -> int:
        return int(ecs.describe_services(cluster=cluster, services=[service])["services"][0]["desiredCount"])

    res = provider.launch(2)
    assert res.error is None and res.launched == 2 and desired() == 2
    # asked for but not placed yet: stable placeholders, the same ones inventory lists
    assert {i.id for i in res.instances} == {i.id for i in provider.inventory()}
    assert all(i.state == "pending" for i in provider.inventory())

    vpc = network(moto_endpoint)
    awsvpc = {"awsvpcConfiguration": {"subnets": list(vpc.subnets), "securityGroups": [vpc.security_group]}}
    for group in (f"service:{service}", f"service:{service}", "family:someone-else"):
        ecs.run_task(cluster=cluster, taskDefinition=family, launchType="FARGATE", group=group,
                     networkConfiguration=awsvpc)
    found = provider.inventory()
    assert len(found) == 2 and all(i.id.startswith("arn:aws:ecs:") for i in found)

    assert provider.retire([found[0].id]) == [found[0].id]
    assert desired() == 1
    assert provider.retire(["arn:aws:ecs:us-east-1:123456789012:task/x/unknown"]) == []
    assert desired() == 1

    missing = pool(f"svc-{suffix()}", "ecs-service", cluster=cluster, service="nope")
    res = provider_for(missing, settings_for(moto_endpoint), CLOCK).launch(1)
    assert res.launched == 0 and res.error and "nope" in res.error


# ECS task per job ------------------------------------------------------------------------------
@pytest.mark.usefixtures("running_tasks")
def test_ecs_task_runs_one_single_run_worker_per_launch(moto_endpoint: str) -> None:
    cluster, family = cluster_with_task_definition(moto_endpoint)
    s = settings_for(moto_endpoint)
    name = f"solver-{suffix()}"
    net = network(moto_endpoint)
    cfg = pool(name, "ecs-task", spot=True, cluster=cluster, task_definition=family,
               subnets=list(net.subnets), security_groups=[net.security_group])
    provider = provider_for(cfg, s, CLOCK)
    assert isinstance(provider, EcsTaskProvider)

    res = provider.launch(2)
    assert res.error is None and res.launched == 2
    ecs = client("ecs", moto_endpoint)
    arns = [i.id for i in res.instances]
    tasks = ecs.describe_tasks(cluster=cluster, tasks=arns, include=["TAGS"])["tasks"]
    assert len(tasks) == 2
    by_arn = {i.id: i for i in res.instances}
    for t in tasks:
        over = t["overrides"]["containerOverrides"][0]
        assert over["name"] == "worker"
        assert over["command"] == ["ebbtide", "worker", "--once", "--pool", name]
        env = {e["name"]: e["value"] for e in over["environment"]}
        assert env["EBBTIDE_WORKER_ID"] == by_arn[t["taskArn"]].worker_id and env["EBBTIDE_POOL"] == name
        tags = {x["key"]: x["value"] for x in t["tags"]}
        assert tags == {"ebbtide:pool": name, "ebbtide:worker-id": by_arn[t["taskArn"]].worker_id}
        assert t["startedBy"] == started_by(name) == f"ebbtide/{name}"
    strategy = provider.request("w")["capacityProviderStrategy"]
    assert strategy == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    assert all(i.spot for i in res.instances)

    # a restarted controller finds them by startedBy, with their worker ids
    again = EcsTaskProvider(cfg, s, CLOCK)
    found = again.inventory()
    assert {(i.id, i.worker_id) for i in found} == {(i.id, i.worker_id) for i in res.instances}

    victim = res.instances[0].id
    assert again.retire([victim, "arn:aws:ecs:us-east-1:123456789012:task/x/unknown"]) == [victim]
    assert {i.id for i in again.inventory()} == {res.instances[1].id}
    stopped = ecs.describe_tasks(cluster=cluster, tasks=[victim])["tasks"][0]
    assert stopped["desiredStatus"] == "STOPPED"

    bad = pool(f"solver-{suffix()}", "ecs-task", cluster=cluster, task_definition=f"missing-{suffix()}")
    res = provider_for(bad, s, CLOCK).launch(1)
    assert res.launched == 0 and res.error and "missing-" in res.error


def test_started_by_stays_within_ecs_limits() -> None:
    long = "a" * 41
    tag = started_by(long)
    assert len(tag) <= 36 and tag.startswith("ebbtide/") and tag != started_by("a" * 40)


# configuration and credentials -----------------------------------------------------------------
def test_missing_options_and_profiles_are_config_errors_naming_the_key(moto_endpoint: str) -> None:
    s = settings_for(moto_endpoint)
    for provider, key in (("ec2", "launch_template"), ("asg", "asg_name"), ("ecs-service", "cluster"),
                          ("ecs-task", "cluster")):
        with pytest.raises(ConfigError) as e:
            provider_for(pool("p", provider), s, CLOCK)
        assert f"fleet.pools[p].options.{key}" in str(e.value)
    with pytest.raises(ConfigError) as e:
        provider_for(pool("p", "ec2", launch_template="lt", profile=f"nope-{suffix()}"), s, CLOCK)
    assert e.value.hint and "AWS_PROFILE" in e.value.hint


def test_missing_credentials_are_reported_with_a_hint(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    empty = tmp_path / "empty"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    provider = provider_for(pool("p", "ec2", launch_template="lt"), settings_for(moto_endpoint), CLOCK)
    res = provider.launch(1)
    assert res.launched == 0 and res.error and "AWS_PROFILE" in res.error
    with pytest.raises(CloudError) as e:
        provider.inventory()
    assert e.value.hint and "AWS_ACCESS_KEY_ID" in e.value.hint


# the controller over real providers ------------------------------------------------------------
def test_controller_falls_back_from_a_spot_shortage_to_on_demand(moto_endpoint: str) -> None:
    """moto cannot simulate a spot shortage: the spot pool's client is the real one wrapped so that
    spot RunInstances calls fail with InsufficientInstanceCapacity. The queue and worker records
    are the in-memory fakes of the decision-core tests (fleet_fakes.py); the instances are moto's."""
    net = network(moto_endpoint)
    s = settings_for(moto_endpoint)
    spot_cfg = pool(f"spot-{suffix()}", "ec2", spot=True, launch_template=net.template)
    od_cfg = pool(f"od-{suffix()}", "ec2", launch_template=net.template)
    spot_cfg = spot_cfg.model_copy(update={"price_per_hour": 0.03, "max": 3})
    od_cfg = od_cfg.model_copy(update={"price_per_hour": 0.10, "max": 3})
    shortage = CapacityShortClient(client("ec2", moto_endpoint), spot=True)
    providers: dict[str, Provider] = {
        spot_cfg.name: Ec2Provider(spot_cfg, s, CLOCK, client=shortage),
        od_cfg.name: provider_for(od_cfg, s, CLOCK),
    }
    clock = VirtualClock()
    queue, workers, recorder = FakeQueue(), FakeWorkers(clock), FakeRecorder()
    queue.set(visible=2, waiting_work_seconds=2 * 1800.0)  # the spot pool alone could take it
    policy = policy_for(DeadlinePolicyConfig(target_ready=1800))
    controller = Controller([spot_cfg, od_cfg], providers, policy, queue, workers, recorder, clock,
                            launch_budget=4, interval=5.0)
    controller.tick()
    first = {r["pool"]: r for r in recorder.rows}
    assert first[spot_cfg.name]["desired"] == 2 and first[spot_cfg.name]["launched"] == 0
    assert "InsufficientInstanceCapacity" in first[spot_cfg.name]["reason"]
    assert len(shortage.calls) == 1 and "InstanceMarketOptions" in shortage.calls[0]
    assert providers[spot_cfg.name].inventory() == []
    od = providers[od_cfg.name].inventory()
    assert len(od) == 2 and first[od_cfg.name]["launched"] == 2
    assert "fell short" in first[od_cfg.name]["reason"]
    assert {w.provider_id for w in workers.in_pool(od_cfg.name)} == {i.id for i in od}

    # later ticks remember the shortage: no new spot attempt, and the on-demand instances, found
    # again by tag, are matched with their records instead of launched twice
    for _ in range(3):
        clock.advance(5)
        controller.tick()
    assert len(shortage.calls) == 1
    assert {i.id for i in providers[od_cfg.name].inventory()} == {i.id for i in od}
    assert len(workers.in_pool(od_cfg.name)) == 2
