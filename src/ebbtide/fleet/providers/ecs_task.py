"""One ECS task per job (seed 003's on-demand Fargate tasks, driven by the fleet instead of a Lambda).

Each launch is one RunTask whose container runs `ebbtide worker --once --pool <pool>`: it takes
one job from the queue, runs it and exits, so idle cost is zero. The controller decides how many
tasks the backlog needs; nothing here knows about jobs.

Pool options:
  cluster, task_definition   required (family, family:revision or ARN)
  subnets, security_groups   awsvpc networking (required by Fargate); `assign_public_ip` (false)
  capacity_provider          FARGATE or FARGATE_SPOT (default: FARGATE_SPOT when `spot: true`),
                             or the name of an EC2-backed capacity provider
  container                  the container to override (default: the task definition's first)
  worker_command             default `ebbtide worker --once --pool <pool>` (+ `--idle-exit`)
  region, endpoint_url, profile

Tasks carry startedBy `ebbtide/<pool>` (ECS allows [A-Za-z0-9_/-], 36 at most: no colon) and the
tags `ebbtide:pool` / `ebbtide:worker-id`; the worker id also goes in as EBBTIDE_WORKER_ID.
"""

from __future__ import annotations

import logging
import shlex
import uuid
from collections.abc import Sequence
from typing import Any

from ebbtide.clock import Clock
from ebbtide.config.sections import PoolConfig
from ebbtide.config.settings import Settings
from ebbtide.errors import ConfigError
from ebbtide.fleet.providers import aws
from ebbtide.fleet.providers.aws import TAG_POOL, TAG_WORKER, worker_command
from ebbtide.fleet.providers.base import Instance, LaunchResult
from ebbtide.fleet.providers.ecs_service import describe_tasks, list_task_arns, task_instance

log = logging.getLogger("ebbtide.fleet.ecs")

# Every AWS action this provider calls: the scaler's IAM policy is generated from this (ebbtide.deploy).
ACTIONS = ("ecs:RunTask", "ecs:TagResource", "ecs:ListTasks", "ecs:DescribeTasks", "ecs:StopTask",
           "ecs:DescribeTaskDefinition", "iam:PassRole")
PERMISSIONS = aws.sentence(ACTIONS) + " (PassRole on the task and execution roles)"


class EcsTaskProvider:
    name = "ecs-task"
    retires_specific = True

    def __init__(self, pool: PoolConfig, settings: Settings, clock: Clock, client: Any = None) -> None:
        self.pool = pool.name
        self.config = pool
        self.clock = clock
        opts = aws.PoolOptions(pool)
        self.cluster = opts.required("cluster", hint="the ECS cluster the tasks run in")
        self.task_definition = opts.required("task_definition", hint="family, family:revision or ARN")
        self.subnets = opts.strings("subnets")
        self.security_groups = opts.strings("security_groups")
        self.public_ip = opts.flag("assign_public_ip", False)
        default_cp = "FARGATE_SPOT" if pool.spot else "FARGATE"
        self.capacity_provider = opts.optional("capacity_provider") or default_cp
        self.container = opts.optional("container")
        raw_cmd = pool.options.get("worker_command")
        self.command = worker_command(pool, once=True) if raw_cmd is None else shlex.split(str(raw_cmd))
        if not self.command:
            raise ConfigError(f"{opts.key('worker_command')} is empty",
                              hint="each task must run a worker; leave the option out for the default")
        self.started_by = aws.started_by(pool.name)
        self.client = client or aws.client("ecs", settings, opts)

    def _container_name(self) -> str:
        if self.container is None:
            resp = aws.call(f"ecs DescribeTaskDefinition {self.task_definition!r}", PERMISSIONS,
                            self.client.describe_task_definition,
                            taskDefinition=self.task_definition)
            containers = resp["taskDefinition"].get("containerDefinitions", [])
            if not containers:
                raise aws.CloudError(f"task definition {self.task_definition!r} has no containers")
            self.container = str(containers[0]["name"])
        return self.container

    def request(self, worker_id: str) -> dict[str, Any]:
        """The RunTask arguments for one worker (pure once the container name is known)."""
        env = [{"name": "EBBTIDE_WORKER_ID", "value": worker_id},
               {"name": "EBBTIDE_POOL", "value": self.pool}]
        req: dict[str, Any] = {
            "cluster": self.cluster,
            "taskDefinition": self.task_definition,
            "count": 1,
            "startedBy": self.started_by,
            "capacityProviderStrategy": [{"capacityProvider": self.capacity_provider, "weight": 1}],
            "overrides": {"containerOverrides": [
                {"name": self._container_name(), "command": list(self.command), "environment": env},
            ]},
            "tags": [{"key": TAG_POOL, "value": self.pool}, {"key": TAG_WORKER, "value": worker_id}],
        }
        if self.subnets:
            vpc: dict[str, Any] = {"subnets": self.subnets,
                                   "assignPublicIp": "ENABLED" if self.public_ip else "DISABLED"}
            if self.security_groups:
                vpc["securityGroups"] = self.security_groups
            req["networkConfiguration"] = {"awsvpcConfiguration": vpc}
        return req

    def launch(self, n: int) -> LaunchResult:
        from botocore.exceptions import BotoCoreError, ClientError

        started: list[Instance] = []
        for _ in range(n):
            wid = f"{self.pool}-{uuid.uuid4().hex[:12]}"
            try:
                resp = self.client.run_task(**self.request(wid))
            except aws.CloudError as e:
                return LaunchResult(n, tuple(started), str(e))
            except (ClientError, BotoCoreError) as e:
                return LaunchResult(n, tuple(started), aws.launch_error(e, PERMISSIONS))
            tasks = resp.get("tasks", [])
            if not tasks:  # Fargate (spot) capacity and placement problems come back as failures
                failures = resp.get("failures", [])
                reasons = "; ".join(_failure(f) for f in failures) or "RunTask started no task"
                log.warning("ecs task launch stopped", extra={"pool": self.pool, "asked": n,
                                                              "got": len(started), "error": reasons})
                return LaunchResult(n, tuple(started), f"RunTask failed: {reasons}")
            started.append(task_instance(tasks[0], self.pool, self.clock.now(), worker_id=wid,
                                         asked=self.capacity_provider))
        log.info("ecs tasks started", extra={"pool": self.pool, "count": len(started),
                                             "capacity_provider": self.capacity_provider})
        return LaunchResult(n, tuple(started))

    def inventory(self) -> list[Instance]:
        arns = list_task_arns(self.client, PERMISSIONS, cluster=self.cluster, startedBy=self.started_by,
                              desiredStatus="RUNNING")
        now = self.clock.now()
        out = []
        for raw in describe_tasks(self.client, self.cluster, arns, PERMISSIONS):
            tags = {t.get("key"): t.get("value") for t in raw.get("tags", [])}
            if tags.get(TAG_POOL, self.pool) != self.pool:
                continue  # a long pool name's startedBy digest collided with another pool
            out.append(task_instance(raw, self.pool, now, worker_id=tags.get(TAG_WORKER),
                                     asked=self.capacity_provider))
        return out

    def retire(self, ids: Sequence[str]) -> list[str]:
        """StopTask, only for tasks this pool started (the controller passes idle or never-healthy ones)."""
        ours = {i.id for i in self.inventory()}
        done = []
        for arn in ids:
            if arn not in ours:
                continue
            aws.call("ecs StopTask", PERMISSIONS, self.client.stop_task, cluster=self.cluster, task=arn,
                     reason=f"ebbtide: retired by the fleet controller (pool {self.pool})")
            done.append(arn)
        if done:
            log.info("ecs tasks stopped", extra={"pool": self.pool, "count": len(done)})
        return done


def _failure(f: dict[str, Any]) -> str:
    reason = str(f.get("reason", "?"))
    return f"{reason} ({f['detail']})" if f.get("detail") else reason
