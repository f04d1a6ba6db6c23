"""Seed 000 as it runs: an ECS service of the user's own workers on `rugbycodex-transcode-jobs`.

Real parts: moto in server mode over HTTP for SQS and ECS (queue, cluster, service, tasks, desired
count); one real OS process per ECS task running `seed000_worker.py`, the stand-in for the seed's
worker container (it polls the queue, holds a message in the seed's body format while it
"transcodes", deletes it; it never talks to ebbtide). The real ebbtide controller and policies.

Stand-ins, because moto has none of them (tests/fleet/ecs_standin.py): the ECS service scheduler
(starts and stops a service's tasks to follow its desired count; never stops a task whose scale-in
protection is on), task scale-in protection (GetTaskProtection/UpdateTaskProtection added to moto),
Application Auto Scaling target tracking (the real target policy, acted on like AWS does), and the
containers themselves (processes that sleep instead of running ffmpeg). Time is scaled: one
second of the seed's media work or cooldowns is `SCALE` seconds here; the queue keeps the seed's
10-minute visibility timeout (duplicate deliveries are a setting of the user's; the simulator shows
them), so the test is about one thing: who stops a container while it holds a job.

The workload is the simulator's `three-matches` scenario (seed 000 scenario 3: three 2-hour
matches at once); the simulator's `seed-original` run of it kills busy tasks, and so does the
seed's own target tracking here, while ebbtide scaling the same service never does — with the
protection it sets itself, or with the worker's own (`protection: worker`). The seed's GPU Auto
Scaling group is steered the same way on its step policy (moto's group honours instance
scale-in protection; the test plays the instances' worker, as moto runs no user data).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_env import REGION, asg, client, cluster_with_task_definition, network, suffix, tasks_stay_running
from ecs_standin import ServiceScheduler, TargetTracking, add_task_protection, read_events

from ebbtide.config import load_settings
from ebbtide.config.sections import StepPolicyConfig, TargetPolicyConfig
from ebbtide.fleet.build import build_controller
from ebbtide.fleet.controller import Controller
from ebbtide.fleet.foreign.source import ForeignWorkerSource
from ebbtide.fleet.foreign.sqs import GuardedEcsService
from ebbtide.services import Services, open_services
from ebbtide.sim.runner import simulate
from ebbtide.sim.scenarios import SCENARIOS
from ebbtide.sim.setups import SEED_ORIGINAL, SETUPS

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("moto-ecs-tasks")]

SCALE = 0.01  # test seconds per seed second: a 2-hour match (20 min of GPU work) holds 12 s
SCENARIO = "three-matches"
MAX_TASKS = 3  # the service's Max Capacity


def seed_policy() -> TargetPolicyConfig:
    """Seed 000's ECS target tracking (the simulator's `seed-original`), cooldowns scaled."""
    p = SEED_ORIGINAL.policy
    assert isinstance(p, TargetPolicyConfig)
    return p.model_copy(update={"scale_out_cooldown": p.scale_out_cooldown * SCALE,
                                "scale_in_cooldown": p.scale_in_cooldown * SCALE})


@pytest.fixture()
def held_tasks(moto_endpoint: str) -> Iterator[None]:
    add_task_protection()
    with tasks_stay_running(moto_endpoint):
        yield


class Seed000:
    """The seed's AWS side in moto: its queue, its cluster and its transcoder service."""

    def __init__(self, endpoint: str, tmp: Path) -> None:
        self.endpoint = endpoint
        sfx = suffix()
        self.queue_name = f"rugbycodex-transcode-jobs-{sfx}"
        sqs = client("sqs", endpoint)
        # the seed's queue as it is: 10-minute visibility, 4-day retention, short polling
        self.queue_url = sqs.create_queue(QueueName=self.queue_name, Attributes={
            "VisibilityTimeout": "600", "MessageRetentionPeriod": "345600",
            "ReceiveMessageWaitTimeSeconds": "0"})["QueueUrl"]
        self.cluster, self.family = cluster_with_task_definition(endpoint)
        self.service = "rugbycodex-transcoder-service"
        client("ecs", endpoint).create_service(cluster=self.cluster, serviceName=self.service,
                                               taskDefinition=self.family, desiredCount=0,
                                               launchType="FARGATE")
        self.net = network(endpoint)
        self.log = tmp / "events.jsonl"
        self.jobs_file = tmp / "jobs.json"
        self.jobs: dict[str, float] = {}

    def upload(self, media_seconds: list[float] | None = None) -> list[str]:
        """The scenario's uploads (or videos this long), as the seed's Supabase function sends them."""
        sqs = client("sqs", self.endpoint)
        for length in media_seconds or [spec.media_seconds for spec in SCENARIOS[SCENARIO].jobs(0)]:
            job_id = str(uuid.uuid4())
            self.jobs[job_id] = length
            self.jobs_file.write_text(json.dumps(self.jobs))
            body = {"job_id": job_id, "media_id": str(uuid.uuid4()), "org_id": "org-rugby"}
            sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body))
        return list(self.jobs)

    def scheduler(self, worker_protects: bool = False) -> ServiceScheduler:
        return ServiceScheduler(self.endpoint, self.cluster, self.service, self.family, self.net.subnets,
                                self.net.security_group, self.queue_url, self.log, self.jobs_file,
                                SCALE, worker_protects=worker_protects)

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in read_events(self.log) if e["event"] == kind]

    def desired(self) -> int:
        svc = client("ecs", self.endpoint).describe_services(cluster=self.cluster, services=[self.service])
        return int(svc["services"][0]["desiredCount"])


def wait_for(what: str, cond: Callable[[], bool], timeout: float = 300.0, step: float = 0.2) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.mark.usefixtures("held_tasks")
def test_the_seeds_target_tracking_kills_a_busy_task(moto_endpoint: str, tmp_path: Path) -> None:
    """The contrast: the simulator's seed-original run of the scenario kills busy tasks, and the
    seed's own target tracking does it here too, on the same stand-ins ebbtide is tested with."""
    sim = simulate(SCENARIOS[SCENARIO].jobs(0), SCENARIOS[SCENARIO].fleet, SETUPS["seed-original"],
                   scenario=SCENARIO)
    assert sim.killed > 0

    seed = Seed000(moto_endpoint, tmp_path)
    scheduler = seed.scheduler().start()
    tracking = TargetTracking(moto_endpoint, seed.cluster, seed.service, seed.queue_url, seed_policy(),
                              MAX_TASKS, period=SEED_ORIGINAL.interval * SCALE).start()
    try:
        seed.upload()
        wait_for("a task to be stopped mid-job", lambda: bool(seed.events("killed")))
    finally:
        tracking.close()
        scheduler.close()
    received = {e["job_id"] for e in seed.events("received")}
    assert received, "the workers took the jobs"
    killed = {e["job_id"] for e in seed.events("killed")}
    assert killed <= received and not killed & {e["job_id"] for e in seed.events("deleted")}


def ebbtide_config(seed: Seed000, tmp: Path, protection: str = "ebbtide") -> Path:
    """What the seed's user writes: scale the transcoder service on the queue's depth, workers foreign."""
    cfg = {
        "data_dir": str(tmp / "data"),
        "aws": {"region": REGION, "endpoint_url": seed.endpoint},
        "fleet": {
            "interval": 0.5,
            "drain_idle_after": 1.0,
            "policy": seed_policy().model_dump(),  # the seed's own decisions: only the acting differs
            "depth_source": f"sqs://{seed.queue_name}",
            "pools": [{
                "name": "transcoder", "provider": "ecs-service", "workers": "foreign", "max": MAX_TASKS,
                "price_per_hour": 0.526, "speed": 6.0, "boot_time": 30,
                "options": {"cluster": seed.cluster, "service": seed.service, "protection": protection,
                            "in_flight_settle": 1.0},
            }],
        },
    }
    path = tmp / "ebbtide.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


class Scaler:
    """`ebbtide scaler` for the config: the controller build_controller wires, ticking."""

    def __init__(self, config: Path) -> None:
        self.services: Services = open_services(load_settings(config, env={}))
        self.controller: Controller = build_controller(self.services)
        self.protected_seen: list[int] = []  # tasks protected, per tick while anything was in flight

    def run_until(self, seed: Seed000, scheduler: ServiceScheduler, what: str, done: Callable[[], bool],
                  timeout: float = 300.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.controller.tick()
            source = self.controller.workers
            assert isinstance(source, ForeignWorkerSource)
            last = source.last.get("transcoder")
            arns = sorted(scheduler.tasks)
            if last is not None and last.in_flight > 0 and arns:
                self.protected_seen.append(len(scheduler.protected(arns)))
            if done():
                return
            time.sleep(self.services.settings.fleet.interval)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")

    def close(self) -> None:
        source = self.controller.workers
        if isinstance(source, ForeignWorkerSource):
            source.close()
        self.services.close()


@pytest.mark.usefixtures("held_tasks")
def test_ebbtide_scales_the_seeds_service_without_a_mid_job_kill(moto_endpoint: str, tmp_path: Path) -> None:
    """Same service, same workers, same queue, same target-tracking decisions; ebbtide acts on them:
    it scales out on the queue's depth, protects every task while anything is in flight, holds the
    scale-in until nothing is, then retires the idle tasks back to zero."""
    sim = simulate(SCENARIOS[SCENARIO].jobs(0), SCENARIOS[SCENARIO].fleet, SETUPS["ebbtide"],
                   scenario=SCENARIO)
    assert sim.killed == 0 and sim.ready == sim.jobs

    seed = Seed000(moto_endpoint, tmp_path)
    scaler = Scaler(ebbtide_config(seed, tmp_path))
    provider = scaler.controller.providers["transcoder"]
    assert isinstance(provider, GuardedEcsService)  # protection = ebbtide (the default)
    scheduler = seed.scheduler().start()
    try:
        jobs = seed.upload()
        scaler.run_until(seed, scheduler, "the service to scale out",
                         lambda: len(seed.events("received")) == len(jobs))
        assert seed.desired() == MAX_TASKS
        scaler.run_until(seed, scheduler, "every job done and the service back to zero",
                         lambda: len(seed.events("deleted")) == len(jobs) and seed.desired() == 0
                         and not scheduler.tasks)
    finally:
        scheduler.close()
        scaler.close()
    assert seed.events("killed") == []
    assert sorted(e["job_id"] for e in seed.events("deleted")) == sorted(jobs)  # each once
    # while jobs were in flight the running tasks were protected, all of them once the jobs started
    assert scaler.protected_seen and max(scaler.protected_seen) == MAX_TASKS
    # the seed's decision to scale in while the jobs ran was held, not acted on; then retired idle
    decisions = list(reversed(scaler.services.catalog.recent_decisions(limit=500)))
    held = [d for d in decisions if d.cause == "scale-in" and d.busy > 0 and d.retired == 0]
    assert held, [d.reason for d in decisions]
    assert any("keep-busy" in d.notes for d in held)
    assert sum(d.retired for d in decisions) >= MAX_TASKS
    assert all(d.at > held[0].at for d in decisions if d.retired)


@pytest.mark.usefixtures("held_tasks")
def test_with_worker_set_protection_an_idle_task_goes_while_others_work(
    moto_endpoint: str, tmp_path: Path
) -> None:
    """The user's worker protects its own task while it holds a message (`protection: worker`):
    ebbtide then knows each task's busy-ness and retires the one whose short job is done while the
    two long ones still run, which the aggregate alone could not allow. No task is stopped mid-job."""
    seed = Seed000(moto_endpoint, tmp_path)
    scaler = Scaler(ebbtide_config(seed, tmp_path, protection="worker"))
    assert not isinstance(scaler.controller.providers["transcoder"], GuardedEcsService)
    scheduler = seed.scheduler(worker_protects=True).start()
    try:
        jobs = seed.upload([14400.0, 14400.0, 900.0])  # two long matches (24 s here), a 15-min clip
        short = jobs[2]
        scaler.run_until(seed, scheduler, "the clip's task to be retired",
                         lambda: any(h[1] == "stopped" for h in scheduler.history))
        long_done = {e["job_id"] for e in seed.events("deleted")} & set(jobs[:2])
        assert not long_done, "a task was retired while both matches still ran"
        assert short in {e["job_id"] for e in seed.events("deleted")}
        scaler.run_until(seed, scheduler, "every job done and the service back to zero",
                         lambda: len(seed.events("deleted")) == len(jobs) and seed.desired() == 0
                         and not scheduler.tasks)
    finally:
        scheduler.close()
        scaler.close()
    assert seed.events("killed") == []
    assert sorted(e["job_id"] for e in seed.events("deleted")) == sorted(jobs)


def test_ebbtide_scales_the_seeds_asg_and_protects_its_instances_while_a_job_runs(
    moto_endpoint: str, tmp_path: Path
) -> None:
    """The seed's GPU Auto Scaling group as a foreign pool, on the seed's step policy (scaled).
    moto's group launches and terminates instances and honours instance scale-in protection; the
    test itself plays the instances' worker (receive, hold, delete), since moto runs no user data."""
    seed = Seed000(moto_endpoint, tmp_path)
    group = asg(moto_endpoint, seed.net, max_size=3)
    hosts = SEED_ORIGINAL.hosts
    assert isinstance(hosts, StepPolicyConfig)
    cfg = yaml.safe_load(ebbtide_config(seed, tmp_path).read_text())
    cfg["fleet"]["policy"] = hosts.model_copy(update={"scale_in_after": hosts.scale_in_after * SCALE,
                                                      "cooldown": hosts.cooldown * SCALE}).model_dump()
    cfg["fleet"]["pools"][0].update(name="gpu", provider="asg",
                                    options={"asg_name": group, "in_flight_settle": 1.0})
    (tmp_path / "ebbtide.yaml").write_text(yaml.safe_dump(cfg))
    scaler = Scaler(tmp_path / "ebbtide.yaml")
    api, sqs = client("autoscaling", moto_endpoint), client("sqs", moto_endpoint)

    def instances() -> dict[str, bool]:
        g = api.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
        return {i["InstanceId"]: bool(i["ProtectedFromScaleIn"]) for i in g["Instances"]}

    def tick_until(what: str, cond: Callable[[], bool], timeout: float = 300.0) -> None:
        def step() -> bool:
            scaler.controller.tick()
            return cond()
        wait_for(what, step, timeout, step=0.5)

    try:
        seed.upload([7200.0, 7200.0])
        tick_until("two instances", lambda: len(instances()) == 2)
        launched = set(instances())
        held = [sqs.receive_message(QueueUrl=seed.queue_url, VisibilityTimeout=600)["Messages"][0]
                for _ in range(2)]
        tick_until("every instance protected while the jobs run", lambda: all(instances().values()))
        # the seed's scale-to-zero comes (queue empty of visible messages); nothing is terminated
        tick_until("the step policy to ask for zero", lambda: any(
            d.cause == "scale-to-zero" and d.busy == 2 for d in scaler.services.catalog.recent_decisions()))
        assert set(instances()) == launched and all(instances().values())
        for m in held:
            sqs.delete_message(QueueUrl=seed.queue_url, ReceiptHandle=m["ReceiptHandle"])
        tick_until("the group back to zero", lambda: not instances())
    finally:
        scaler.close()
    decisions = scaler.services.catalog.recent_decisions(limit=500)
    assert sum(d.retired for d in decisions) == 2
