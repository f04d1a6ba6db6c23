"""A foreign pool on an Auto Scaling group (moto, server mode) with a real BullMQ 6 worker (Node)
standing in for the group's instance, named with its instance id: the controller protects the
busy instance from scale-in while the policy wants zero, and retires it once its job is done."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from aws_env import asg, client, network, pool, settings_for, suffix
from foreign_env import NodeWorker, producer

from ebbtide.catalog import open_catalog
from ebbtide.catalog.states import WorkerState
from ebbtide.clock import SYSTEM_CLOCK
from ebbtide.config.sections import StepPolicyConfig
from ebbtide.fleet.causes import Note
from ebbtide.fleet.controller import Controller
from ebbtide.fleet.foreign.bullmq import BullMQProbe
from ebbtide.fleet.foreign.source import ForeignWorkerSource
from ebbtide.fleet.policies import policy_for
from ebbtide.fleet.providers import provider_for
from ebbtide.fleet.sources import CatalogFleetState, DepthQueueSource
from ebbtide.queue.bullmq import BullMQDepth


@pytest.mark.slow
def test_asg_foreign_pool_keeps_the_busy_instance(
    moto_endpoint: str, redis_url: str, queue_name: str, tmp_path: Path
) -> None:
    net = network(moto_endpoint)
    group = asg(moto_endpoint, net, max_size=2)
    cfg = pool(f"asg-{suffix()}", "asg", asg_name=group).model_copy(update={"workers": "foreign"})
    provider = provider_for(cfg, settings_for(moto_endpoint), SYSTEM_CLOCK)
    catalog = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    state = CatalogFleetState(catalog, (cfg.name,))
    probe = BullMQProbe.from_url(f"bullmq://127.0.0.1:6379/0/{queue_name}")
    workers = ForeignWorkerSource(state, {cfg.name: probe}, SYSTEM_CLOCK, sightings=state)
    depth = DepthQueueSource(BullMQDepth.from_url(f"bullmq://127.0.0.1:6379/0/{queue_name}"), SYSTEM_CLOCK)
    policy = StepPolicyConfig(scale_in_after=1, cooldown=0)
    controller = Controller([cfg], {cfg.name: provider}, policy_for(policy), depth, workers, state,
                            SYSTEM_CLOCK, interval=0.5, policy_name="step", idle_grace=1.0)
    api = client("autoscaling", moto_endpoint)

    def group_now() -> dict[str, Any]:
        return dict(api.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0])

    node: NodeWorker | None = None
    try:
        producer("6", redis_url, queue_name, "add", "1")
        controller.tick()
        [inst] = group_now()["Instances"]
        iid = inst["InstanceId"]
        [row] = catalog.list_workers(pool=cfg.name)
        assert (row.provider_id, row.state) == (iid, WorkerState.BOOTING)
        node = NodeWorker("6", redis_url, queue_name, iid, job_ms=12_000)
        node.wait_for("start")
        protect_seen = False
        while not node.done():  # the job runs; nothing waits, so the policy wants zero
            controller.tick()
            g = group_now()
            assert [i["InstanceId"] for i in g["Instances"]] == [iid], "busy instance terminated"
            if g["Instances"][0]["ProtectedFromScaleIn"]:
                protect_seen = True
            time.sleep(0.3)
        assert protect_seen
        assert any(Note.PROTECT_BUSY in d.notes for d in catalog.recent_decisions(limit=200))
        end = time.monotonic() + 60
        while group_now()["Instances"] and time.monotonic() < end:
            controller.tick()
            time.sleep(0.3)
        g = group_now()
        assert g["DesiredCapacity"] == 0 and not g["Instances"]
        assert node.kill() == set()
    finally:
        if node is not None:
            node.stop()
        probe.close()
        catalog.close()
