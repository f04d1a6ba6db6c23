"""Stand-ins for the parts of ECS that moto does not play, for the foreign-pool tests.

moto (5.x, server mode) stores ECS services, tasks and their desired counts, but it has no service
scheduler (nothing starts or stops a service's tasks when its desired count changes), it runs no
containers, and it has no task scale-in protection API. These stand-ins fill exactly those gaps:

- `add_task_protection()` adds GetTaskProtection and UpdateTaskProtection to the moto server
  running in this process (the session's `moto_endpoint`), with ECS's request and response shapes
  (at most 10 tasks per update, 1-2880 minutes, protection that expires). Callers reach them over
  HTTP through boto3, like every other moto call.
- `ServiceScheduler` is the ECS service scheduler: it reads the service's desired count from moto
  and starts tasks (RunTask with the service's group, plus one worker process per task: the
  container) or stops them (StopTask, SIGTERM to the process). Like ECS, scale-in never stops a
  task with live scale-in protection: it waits until protection is off or expired.
- `TargetTracking` is Application Auto Scaling target tracking as seed 000 configured it, acting on
  the real `TargetPolicyConfig` decisions (the same ones the simulator's `seed-original` setup
  uses) by setting the service's desired count, with the seed's periods and cooldowns scaled down.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws_env import REGION, client

from ebbtide.clock import SYSTEM_CLOCK
from ebbtide.config.sections import PoolConfig, TargetPolicyConfig
from ebbtide.fleet.model import Observation, PoolView, QueueView, WorkerView
from ebbtide.fleet.policies import policy_for

WORKER_SCRIPT = Path(__file__).with_name("seed000_worker.py")
_lock = threading.Lock()


# Task scale-in protection, added to moto ----------------------------------------------------------
def _moto_task(backend: Any, cluster: str, arn: str) -> Any | None:
    for task in backend.tasks.get(cluster.rsplit("/", 1)[-1], {}).values():
        if arn in (task.task_arn, task.id):
            return task
    return None


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _entry(task: Any) -> dict[str, Any]:
    until = getattr(task, "protected_until", None)
    on = until is not None and until > _now()
    out: dict[str, Any] = {"taskArn": task.task_arn, "protectionEnabled": on}
    if on:
        out["expirationDate"] = until
    return out


def _get_task_protection(self: Any) -> Any:
    from moto.core.responses import ActionResult

    cluster = self._get_param("cluster", "default")
    found, failures = [], []
    for arn in self._get_param("tasks", []):
        task = _moto_task(self.ecs_backend, cluster, arn)
        if task is None:
            failures.append({"arn": arn, "reason": "MISSING"})
        else:
            found.append(_entry(task))
    return ActionResult({"protectedTasks": found, "failures": failures})


def _update_task_protection(self: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.ecs.exceptions import InvalidParameterException

    cluster = self._get_param("cluster", "default")
    arns = self._get_param("tasks", [])
    on = bool(self._get_param("protectionEnabled"))
    minutes = int(self._get_param("expiresInMinutes") or 120)
    if len(arns) > 10 or not 1 <= minutes <= 2880:
        raise InvalidParameterException("at most 10 tasks; expiresInMinutes from 1 to 2880")
    found, failures = [], []
    for arn in arns:
        task = _moto_task(self.ecs_backend, cluster, arn)
        if task is None:
            failures.append({"arn": arn, "reason": "MISSING"})
        elif not str(task.group).startswith("service:"):
            failures.append({"arn": arn, "reason": "TASK_NOT_VALID"})
        else:
            task.protected_until = _now() + datetime.timedelta(minutes=minutes) if on else None
            found.append(_entry(task))
    return ActionResult({"protectedTasks": found, "failures": failures})


def add_task_protection() -> None:
    """Teach this process's moto server ECS task scale-in protection (idempotent)."""
    from moto.ecs.responses import EC2ContainerServiceResponse as R

    R.get_task_protection = _get_task_protection  # type: ignore[attr-defined]
    R.update_task_protection = _update_task_protection  # type: ignore[attr-defined]


# The seed's worker containers ---------------------------------------------------------------------
@dataclass
class Task:
    arn: str
    proc: subprocess.Popen[bytes]
    started: float


def read_events(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


@dataclass
class ServiceScheduler:
    """The ECS service scheduler for one service, with one seed-000 worker process per task."""

    endpoint: str
    cluster: str
    service: str
    family: str
    subnets: tuple[str, ...]
    security_group: str
    queue_url: str
    log: Path  # the workers' JSON-lines events (received, deleted, killed)
    jobs_file: Path  # job id -> media seconds (what the real worker learns from the video)
    scale: float  # seconds of the test per second of the seed's media work
    visibility: int = 600  # the seed's VisibilityTimeout, asked on each receive
    worker_protects: bool = False  # the worker sets its own task protection while it holds a job
    period: float = 0.3
    tasks: dict[str, Task] = field(default_factory=dict)
    history: list[tuple[float, str, str]] = field(default_factory=list)  # (t, started|stopped|held, arn)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _rng: random.Random = field(default_factory=lambda: random.Random(0))

    def __post_init__(self) -> None:
        self.ecs = client("ecs", self.endpoint)

    def desired(self) -> int:
        svc = self.ecs.describe_services(cluster=self.cluster, services=[self.service])["services"][0]
        return int(svc["desiredCount"])

    def protected(self, arns: list[str]) -> set[str]:
        out: set[str] = set()
        for i in range(0, len(arns), 10):
            got = self.ecs.get_task_protection(cluster=self.cluster, tasks=arns[i : i + 10])
            out |= {t["taskArn"] for t in got["protectedTasks"] if t["protectionEnabled"]}
        return out

    def _start(self) -> None:
        awsvpc = {"awsvpcConfiguration": {"subnets": list(self.subnets),
                                          "securityGroups": [self.security_group]}}
        task = self.ecs.run_task(cluster=self.cluster, taskDefinition=self.family, launchType="FARGATE",
                                 group=f"service:{self.service}", networkConfiguration=awsvpc)["tasks"][0]
        arn = task["taskArn"]
        env = {**os.environ, "QUEUE_URL": self.queue_url, "AWS_ENDPOINT_URL": self.endpoint,
               "AWS_DEFAULT_REGION": REGION, "TASK_ARN": arn, "ECS_CLUSTER": self.cluster,
               "EVENT_LOG": str(self.log), "JOBS_FILE": str(self.jobs_file), "WORK_SCALE": str(self.scale),
               "VISIBILITY_TIMEOUT": str(self.visibility),
               "PROTECT_SELF": "1" if self.worker_protects else "0"}
        proc = subprocess.Popen([sys.executable, str(WORKER_SCRIPT)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.tasks[arn] = Task(arn, proc, time.monotonic())
        self.history.append((time.monotonic(), "started", arn))

    def _stop_task(self, arn: str, reason: str) -> None:
        task = self.tasks.pop(arn)
        self.ecs.stop_task(cluster=self.cluster, task=arn, reason=reason)
        if task.proc.poll() is None:
            task.proc.send_signal(signal.SIGTERM)  # ECS: SIGTERM, then SIGKILL after stopTimeout
            try:
                task.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                task.proc.kill()
                task.proc.wait(timeout=10)
        self.history.append((time.monotonic(), "stopped", arn))

    def step(self) -> None:
        for arn in [a for a, t in self.tasks.items() if t.proc.poll() is not None]:
            self._stop_task(arn, "Essential container in task exited")  # ECS then starts a new one
        want, have = self.desired(), len(self.tasks)
        if want > have:
            for _ in range(want - have):
                self._start()
        elif want < have:
            arns = sorted(self.tasks)
            free = [a for a in arns if a not in self.protected(arns)]
            if len(free) < have - want:
                self.history.append((time.monotonic(), "held", f"{have - want - len(free)} protected"))
            for arn in self._rng.sample(free, min(len(free), have - want)):
                self._stop_task(arn, "Scaling activity initiated by (deployment ecs-svc)")

    def _loop(self) -> None:
        while not self._stop.is_set():
            with _lock:
                self.step()
            self._stop.wait(self.period)

    def start(self) -> ServiceScheduler:
        self._thread = threading.Thread(target=self._loop, name=f"ecs-{self.service}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for arn in list(self.tasks):
            self._stop_task(arn, "test over")


# Seed 000's own scaling: ECS target tracking on the visible count ---------------------------------
@dataclass
class TargetTracking:
    """Application Auto Scaling target tracking for the service, as seed 000 set it up, every
    `period` seconds: the real `TargetPolicyConfig` decision, acted on by setting the desired
    count (AWS's scale-in stops any task that is not protected, busy or not)."""

    endpoint: str
    cluster: str
    service: str
    queue_url: str
    policy: TargetPolicyConfig
    max_tasks: int
    period: float
    _memory: Mapping[str, Any] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.ecs, self.sqs = client("ecs", self.endpoint), client("sqs", self.endpoint)
        self.decide = policy_for(self.policy)
        self.pool = PoolConfig.model_validate({"name": "aws", "provider": "ecs-service",
                                               "max": self.max_tasks, "price_per_hour": 0.526})

    def step(self) -> None:
        a = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["All"])["Attributes"]
        queue = QueueView(visible=int(a["ApproximateNumberOfMessages"]),
                          in_flight=int(a["ApproximateNumberOfMessagesNotVisible"]))
        svc = self.ecs.describe_services(cluster=self.cluster, services=[self.service])["services"][0]
        now = SYSTEM_CLOCK.now()
        from ebbtide.catalog.states import WorkerState

        running = [WorkerView(f"t{i}", "aws", WorkerState.IDLE, now, now) for i in range(svc["desiredCount"])]
        obs = Observation(now, queue, (PoolView(self.pool, tuple(running)),), {}, self._memory)
        dec = self.decide(obs)
        self._memory = dec.memory
        want = dec.desired("aws")
        if want != svc["desiredCount"]:
            self.ecs.update_service(cluster=self.cluster, service=self.service, desiredCount=want)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with _lock:
                self.step()
            self._stop.wait(self.period)

    def start(self) -> TargetTracking:
        self._thread = threading.Thread(target=self._loop, name=f"tt-{self.service}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
