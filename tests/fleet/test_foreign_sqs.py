"""Foreign pools on an SQS queue: what the probe knows per ECS task / ASG instance, and the guard
that protects ECS tasks while anything is in flight.

Real parts: moto in server mode over HTTP (SQS queue and its counts, ECS cluster/service/tasks,
Auto Scaling group with instance scale-in protection). Stand-in: ECS task scale-in protection
(GetTaskProtection/UpdateTaskProtection), which moto lacks, added to the moto server by
`ecs_standin.add_task_protection` with ECS's request and response shapes. The pure decisions
(settled in-flight count, views per mode, protection changes) are tested as plain functions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from aws_env import (
    asg,
    client,
    cluster_with_task_definition,
    network,
    pool,
    settings_for,
    suffix,
    tasks_stay_running,
)
from ecs_standin import add_task_protection

from ebbtide.clock import VirtualClock
from ebbtide.config.settings import Settings
from ebbtide.errors import ConfigError
from ebbtide.fleet.foreign import open_probe
from ebbtide.fleet.foreign.base import BusyEvidence
from ebbtide.fleet.foreign.sqs import (
    AsgInstances,
    GuardedEcsService,
    PlatformState,
    Protection,
    QuietOnlyEcsService,
    SqsBusyProbe,
    Unprotected,
    foreign_views,
    guard_provider,
    open_sqs_probe,
    protection_changes,
    settled_in_flight,
)
from ebbtide.fleet.providers import provider_for
from ebbtide.fleet.providers.asg import AsgProvider
from ebbtide.fleet.providers.base import Instance, ProtectsBusy, worker_id_for
from ebbtide.queue.sqs_depth import SqsDepth

pytestmark = pytest.mark.xdist_group("moto-ecs-tasks")


# pure ---------------------------------------------------------------------------------------------
def test_in_flight_is_the_highest_reading_within_the_settle_window() -> None:
    readings = [(0.0, 3), (30.0, 1), (50.0, 0)]
    assert settled_in_flight(readings, 50.0, 60.0) == 3  # a 0 is not proof until a minute of them
    assert settled_in_flight(readings, 75.0, 60.0) == 1
    assert settled_in_flight(readings, 200.0, 60.0) == 0  # only the latest is left: it stands
    assert settled_in_flight([], 0.0, 60.0) == 0


def test_views_per_protection_mode() -> None:
    insts = [Instance(i, "p", 0.0) for i in ("t-busy", "t-idle", "t-booting", "svc#pending-1", "t-gone")]
    platform = {"t-busy": PlatformState(True, True), "t-idle": PlatformState(True, False),
                "t-booting": PlatformState(False, False)}
    worker = foreign_views(insts, platform, Protection.WORKER)
    assert (worker["t-busy"].busy, worker["t-busy"].how) == (True, BusyEvidence.PROTECTED)
    assert (worker["t-idle"].busy, worker["t-idle"].how) == (False, BusyEvidence.UNPROTECTED)
    for unknown in ("t-booting", "svc#pending-1", "t-gone"):
        assert not worker[unknown].connected and worker[unknown].busy is None
    # with messages visible an unprotected worker may be taking one now: not known idle
    backlog = foreign_views(insts, platform, Protection.WORKER, backlog=True)
    assert backlog["t-busy"].busy is True
    assert (backlog["t-idle"].busy, backlog["t-idle"].how) == (None, BusyEvidence.IN_FLIGHT_AGGREGATE)
    # protection set by ebbtide (or nobody) says nothing per task: the aggregate decides
    for mode in (Protection.EBBTIDE, Protection.OFF):
        v = foreign_views(insts, platform, mode)
        assert v["t-busy"].connected and v["t-busy"].busy is None
        assert v["t-busy"].how == BusyEvidence.IN_FLIGHT_AGGREGATE


def test_protection_changes_protect_refresh_and_release() -> None:
    now, minutes = 10_000.0, 30  # half-life: 15 min
    until = {"a": None, "b": now + 20 * 60, "c": now + 5 * 60, "d": now + 20 * 60}
    on, off = protection_changes({"a", "b", "c"}, ["a", "b", "c", "d"], until, now, minutes)
    assert on == ["a", "c"]  # off, or past half its life; b is fresh
    assert off == ["d"]


def test_worker_ids_for_arns_and_placeholders_are_valid_catalog_ids() -> None:
    from ebbtide.catalog.sql_core import WORKER_ID_PATTERN

    for iid in ("arn:aws:ecs:us-east-1:123456789012:task/cluster/0123abcd",
                "ecs-service:c/svc#pending-1", "asg:group#pending-2", "x" * 300):
        wid = worker_id_for(Instance(iid, "p", 0.0))
        assert WORKER_ID_PATTERN.match(wid), wid
    assert worker_id_for(Instance("i-1", "p", 0.0, worker_id="w-1")) == "w-1"
    assert worker_id_for(Instance("x" * 300, "p", 0.0)) != worker_id_for(Instance("x" * 299 + "y", "p", 0.0))


# moto ---------------------------------------------------------------------------------------------
@pytest.fixture()
def held_tasks(moto_endpoint: str) -> Iterator[None]:
    add_task_protection()
    with tasks_stay_running(moto_endpoint):
        yield


def _queue(endpoint: str) -> tuple[str, str]:
    name = f"rugbycodex-transcode-jobs-{suffix()}"
    url = client("sqs", endpoint).create_queue(QueueName=name)["QueueUrl"]
    return name, url


def _service_with_tasks(endpoint: str, n: int) -> tuple[str, str, list[str]]:
    cluster, family = cluster_with_task_definition(endpoint)
    service = f"transcoder-{suffix()}"
    ecs = client("ecs", endpoint)
    ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=family, desiredCount=n,
                       launchType="FARGATE")
    net = network(endpoint)
    awsvpc = {"awsvpcConfiguration": {"subnets": list(net.subnets), "securityGroups": [net.security_group]}}
    arns = [ecs.run_task(cluster=cluster, taskDefinition=family, launchType="FARGATE",
                         group=f"service:{service}", networkConfiguration=awsvpc)["tasks"][0]["taskArn"]
            for _ in range(n)]
    return cluster, service, arns


def _settings(endpoint: str, name: str, **pool_cfg: Any) -> tuple[Settings, Any]:
    base = settings_for(endpoint)
    p = pool(f"transcoder-{suffix()}", pool_cfg.pop("provider"), **pool_cfg)
    p = p.model_copy(update={"workers": "foreign"})
    fleet = base.fleet.model_copy(update={"depth_source": f"sqs://{name}", "pools": (p,)})
    return base.model_copy(update={"fleet": fleet}), p


def _protected(endpoint: str, cluster: str, arns: list[str]) -> set[str]:
    got = client("ecs", endpoint).get_task_protection(cluster=cluster, tasks=arns)["protectedTasks"]
    return {t["taskArn"] for t in got if t["protectionEnabled"]}


@pytest.mark.usefixtures("held_tasks")
def test_worker_set_task_protection_tells_busy_from_idle(moto_endpoint: str) -> None:
    name, url = _queue(moto_endpoint)
    cluster, service, arns = _service_with_tasks(moto_endpoint, 2)
    settings, cfg = _settings(moto_endpoint, name, provider="ecs-service", cluster=cluster, service=service,
                              protection="worker", in_flight_settle=0)
    probe = open_probe(cfg, settings, VirtualClock())
    assert isinstance(probe, SqsBusyProbe) and probe.protection == Protection.WORKER
    sqs, ecs = client("sqs", moto_endpoint), client("ecs", moto_endpoint)
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"job_id": "j-1", "media_id": "m", "org_id": "o"}))
    assert sqs.receive_message(QueueUrl=url, VisibilityTimeout=600)["Messages"]
    # the worker of task 0 holds it and protected its task (through the ECS agent endpoint)
    ecs.update_task_protection(cluster=cluster, tasks=[arns[0]], protectionEnabled=True, expiresInMinutes=60)
    placeholder = f"ecs-service:{cluster}/{service}#pending-1"
    result = probe.probe([Instance(a, cfg.name, 0.0) for a in (*arns, placeholder)])
    assert result.in_flight == 1
    busy, idle = result.view(arns[0]), result.view(arns[1])
    assert (busy.connected, busy.busy, busy.how) == (True, True, BusyEvidence.PROTECTED)
    assert (idle.connected, idle.busy, idle.how) == (True, False, BusyEvidence.UNPROTECTED)
    assert not result.view(placeholder).connected
    # ebbtide writes no protection for such a pool: the controller gets no sync_protection
    provider = guard_provider(cfg, provider_for(cfg, settings, VirtualClock()), probe, VirtualClock())
    assert not isinstance(provider, ProtectsBusy)
    # a stopped task is not connected any more
    ecs.stop_task(cluster=cluster, task=arns[1], reason="test")
    assert not probe.probe([Instance(arns[1], cfg.name, 0.0)]).view(arns[1]).connected
    probe.close()


@pytest.mark.usefixtures("held_tasks")
def test_ebbtide_protects_every_task_while_anything_is_in_flight(moto_endpoint: str) -> None:
    name, url = _queue(moto_endpoint)
    cluster, service, arns = _service_with_tasks(moto_endpoint, 3)
    settings, cfg = _settings(moto_endpoint, name, provider="ecs-service", cluster=cluster, service=service,
                              in_flight_settle=60)
    clock = VirtualClock(start=__import__("time").time())
    probe = open_probe(cfg, settings, clock)
    assert isinstance(probe, SqsBusyProbe) and probe.protection == Protection.EBBTIDE  # the default
    guard = guard_provider(cfg, provider_for(cfg, settings, clock), probe, clock)
    assert isinstance(guard, GuardedEcsService) and isinstance(guard, ProtectsBusy)
    sqs = client("sqs", moto_endpoint)

    # nothing in flight yet: views unknown per task, aggregate 0
    result = probe.probe([Instance(a, cfg.name, 0.0) for a in arns])
    assert result.in_flight == 0
    assert {result.view(a).how for a in arns} == {BusyEvidence.IN_FLIGHT_AGGREGATE}

    sqs.send_message(QueueUrl=url, MessageBody="{}")
    assert probe.probe([]).in_flight == 1  # visible: an idle task may take it any moment
    msg = sqs.receive_message(QueueUrl=url, VisibilityTimeout=600)["Messages"][0]
    assert probe.probe([]).in_flight == 1
    on, off = guard.sync_protection(set(arns))  # the controller: every task busy while 1 is in flight
    assert sorted(on) == sorted(arns) and off == []
    assert _protected(moto_endpoint, cluster, arns) == set(arns)
    assert guard.sync_protection(set(arns)) == ([], [])  # fresh: no calls again

    # deleted: one reading of 0 is not enough within the settle window
    sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
    clock.advance(30)
    assert probe.probe([]).in_flight == 1
    clock.advance(31)
    assert probe.probe([]).in_flight == 0
    on, off = guard.sync_protection(set())
    assert on == [] and sorted(off) == sorted(arns)
    assert _protected(moto_endpoint, cluster, arns) == set()

    # a retire that races an upload: the count goes down, then every task is protected at once
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    assert guard.retire([arns[0]]) == [arns[0]]
    svc = client("ecs", moto_endpoint).describe_services(cluster=cluster, services=[service])["services"][0]
    assert svc["desiredCount"] == 2
    assert _protected(moto_endpoint, cluster, arns) == set(arns)
    probe.close()

    # nobody protects (`off`): the count goes down only while the queue holds nothing
    settings, off_cfg = _settings(moto_endpoint, name, provider="ecs-service", cluster=cluster,
                                  service=service, protection="off")
    off_probe = open_probe(off_cfg, settings, clock)
    assert isinstance(off_probe, SqsBusyProbe)
    held = guard_provider(off_cfg, provider_for(off_cfg, settings, clock), off_probe, clock)
    assert isinstance(held, QuietOnlyEcsService) and not isinstance(held, ProtectsBusy)
    assert held.retire([arns[1]]) == []  # one message is still visible
    off_probe.close()


def test_asg_instances_read_instance_protection(moto_endpoint: str) -> None:
    name, _ = _queue(moto_endpoint)
    net = network(moto_endpoint)
    group = asg(moto_endpoint, net, max_size=3)
    settings, cfg = _settings(moto_endpoint, name, provider="asg", asg_name=group, protection="worker")
    provider = provider_for(cfg, settings, VirtualClock())
    assert isinstance(provider, AsgProvider)
    provider.launch(2)
    ids = sorted(i.id for i in provider.inventory())
    assert len(ids) == 2
    # the user's worker on ids[0] protects its own instance while it works
    client("autoscaling", moto_endpoint).set_instance_protection(
        AutoScalingGroupName=group, InstanceIds=[ids[0]], ProtectedFromScaleIn=True)
    probe = open_probe(cfg, settings, VirtualClock())
    assert isinstance(probe, SqsBusyProbe) and isinstance(probe.platform, AsgInstances)
    result = probe.probe([Instance(i, cfg.name, 0.0) for i in ids])
    assert (result.view(ids[0]).busy, result.view(ids[0]).how) == (True, BusyEvidence.PROTECTED)
    assert (result.view(ids[1]).busy, result.view(ids[1]).how) == (False, BusyEvidence.UNPROTECTED)
    assert all(result.view(i).connected for i in ids)
    # worker-owned protection: the controller must not sync it; ebbtide-owned: the group's own sync
    assert isinstance(guard_provider(cfg, provider, probe, VirtualClock()), Unprotected)
    mine = cfg.model_copy(update={"options": {**cfg.options, "protection": "ebbtide"}})
    probe2 = open_sqs_probe(mine, SqsDepth(name, endpoint_url=moto_endpoint, region="us-east-1"), settings,
                            VirtualClock())
    assert guard_provider(mine, provider, probe2, VirtualClock()) is provider
    assert isinstance(provider, ProtectsBusy)


def test_bad_options_are_config_errors(moto_endpoint: str) -> None:
    name, _ = _queue(moto_endpoint)
    settings, cfg = _settings(moto_endpoint, name, provider="ecs-service", cluster="c", service="s",
                              protection="sometimes")
    with pytest.raises(ConfigError, match="protection"):
        open_probe(cfg, settings, VirtualClock())
    settings, cfg = _settings(moto_endpoint, name, provider="ec2", launch_template="lt")
    with pytest.raises(ConfigError, match="ecs-service or asg"):
        open_probe(cfg, settings, VirtualClock())
