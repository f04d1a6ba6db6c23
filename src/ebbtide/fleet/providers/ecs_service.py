"""ECS service pools: the service's desired count.

Pool options: `cluster`, `service` (required); `region`, `endpoint_url`, `profile`.

ECS, not ebbtide, picks which task stops when the count goes down, so `retires_specific` is False:
the workers keep ECS task scale-in protection on while busy (worker/ecs_protection.py) and the
controller drains the ones it wants gone. `retire(ids)` lowers the desired count by the number of
ids it knows (ECS then stops unprotected, i.e. idle, tasks). Tasks asked for but not placed yet are
listed as stable placeholders (`ecs-service:<cluster>/<service>#pending-<k>`). The workers report
EBBTIDE_PROVIDER_ID = their task ARN so the controller matches them with `inventory`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ebbtide.clock import Clock
from ebbtide.config.sections import PoolConfig
from ebbtide.config.settings import Settings
from ebbtide.fleet.providers import aws
from ebbtide.fleet.providers.base import Instance, LaunchResult

log = logging.getLogger("ebbtide.fleet.ecs")

# Every AWS action this provider calls: the scaler's IAM policy is generated from this (ebbtide.deploy).
ACTIONS = ("ecs:DescribeServices", "ecs:UpdateService", "ecs:ListTasks", "ecs:DescribeTasks")
PERMISSIONS = aws.sentence(ACTIONS)
LIVE_TASK_STATES = frozenset({"PROVISIONING", "PENDING", "ACTIVATING", "RUNNING"})


def task_instance(
    raw: dict[str, Any], pool: str, now: float, worker_id: str | None = None, asked: str | None = None
) -> Instance:
    """One ECS task as an Instance; FARGATE_SPOT (or a spot capacity provider) marks it spot.

    `asked` is the capacity provider the launch asked for, for when the task does not say.
    """
    created = raw.get("createdAt")
    provider = str(raw.get("capacityProviderName") or asked or "")
    return Instance(
        raw["taskArn"], pool, created.timestamp() if created is not None else now,
        worker_id=worker_id, spot="SPOT" in provider.upper(),
        state=str(raw.get("lastStatus", "PENDING")).lower(),
    )


def describe_tasks(client: Any, cluster: str, arns: list[str], permissions: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for batch in aws.chunks(arns, 100):
        resp = aws.call("ecs DescribeTasks", permissions, client.describe_tasks,
                        cluster=cluster, tasks=batch, include=["TAGS"])
        out += resp.get("tasks", [])
    return [t for t in out if t.get("lastStatus") in LIVE_TASK_STATES and t.get("desiredStatus") != "STOPPED"]


def list_task_arns(client: Any, permissions: str, **kwargs: Any) -> list[str]:
    pages = aws.call("ecs ListTasks", permissions,
                     lambda **kw: list(client.get_paginator("list_tasks").paginate(**kw)), **kwargs)
    return [arn for page in pages for arn in page.get("taskArns", [])]


class EcsServiceProvider:
    name = "ecs-service"
    retires_specific = False

    def __init__(self, pool: PoolConfig, settings: Settings, clock: Clock, client: Any = None) -> None:
        self.pool = pool.name
        self.config = pool
        self.clock = clock
        opts = aws.PoolOptions(pool)
        self.cluster = opts.required("cluster", hint="the ECS cluster of the worker service")
        self.service = opts.required("service", hint="the ECS service whose desired count this pool sets")
        self.client = client or aws.client("ecs", settings, opts)
        self.prefix = f"ecs-service:{self.cluster}/{self.service}"

    def describe(self) -> dict[str, Any]:
        resp = aws.call("ecs DescribeServices", PERMISSIONS, self.client.describe_services,
                        cluster=self.cluster, services=[self.service])
        services = [s for s in resp.get("services", []) if s.get("status") != "INACTIVE"]
        if not services:
            reason = next((f.get("reason", "") for f in resp.get("failures", [])), "MISSING")
            raise aws.CloudError(f"ECS service {self.service!r} in cluster {self.cluster!r}: {reason}",
                                 hint="check the pool's cluster and service options and the region")
        service: dict[str, Any] = services[0]
        return service

    def _tasks(self) -> list[dict[str, Any]]:
        arns = list_task_arns(self.client, PERMISSIONS, cluster=self.cluster, serviceName=self.service,
                              desiredStatus="RUNNING")
        group = f"service:{self.service}"
        # a task's group is "service:<name>" when the service started it; this also keeps strays out
        tasks = describe_tasks(self.client, self.cluster, arns, PERMISSIONS)
        return [t for t in tasks if t.get("group") == group]

    def inventory(self) -> list[Instance]:
        desired = int(self.describe().get("desiredCount", 0))
        now = self.clock.now()
        tasks = [task_instance(t, self.pool, now) for t in self._tasks()]
        waiting = max(0, desired - len(tasks))
        return tasks + [Instance(aws.pending_id(self.prefix, k), self.pool, now, state="pending")
                        for k in range(1, waiting + 1)]

    def _set(self, count: int) -> None:
        aws.call("ecs UpdateService", PERMISSIONS, self.client.update_service,
                 cluster=self.cluster, service=self.service, desiredCount=count)

    def launch(self, n: int) -> LaunchResult:
        try:
            desired = int(self.describe().get("desiredCount", 0))
            running = len(self._tasks())
            self._set(desired + n)
        except aws.CloudError as e:
            return LaunchResult(n, error=str(e))
        now = self.clock.now()
        first = max(1, desired - running + 1)  # the top slots of what inventory will list
        got = tuple(Instance(aws.pending_id(self.prefix, k), self.pool, now, state="pending")
                    for k in range(first, first + n))
        log.info("ecs service desired count raised", extra={"pool": self.pool, "service": self.service,
                                                            "from": desired, "to": desired + n})
        return LaunchResult(n, got)

    def retire(self, ids: Sequence[str]) -> list[str]:
        """Lower the desired count by the known ids; ECS stops unprotected tasks of its choosing."""
        known = {i.id for i in self.inventory()}
        gone = [i for i in ids if i in known]
        if not gone:
            return []
        desired = int(self.describe().get("desiredCount", 0))
        target = max(0, desired - len(gone))
        self._set(target)
        log.info("ecs service desired count lowered", extra={"pool": self.pool, "service": self.service,
                                                             "from": desired, "to": target})
        return gone[: desired - target]
