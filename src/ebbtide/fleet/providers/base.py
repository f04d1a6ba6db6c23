"""The `Provider` port: how a pool gets and loses workers.

A provider acts on one pool. The controller decides *how many*; the provider only launches,
retires and lists. It never decides whether a worker is busy: the controller passes `retire` only
idle or never-booted workers, and asks busy ones to drain through the catalog instead.

How the backends map (the cloud ones come next; this contract is written for them):

- `static`  — always-on workers the fleet neither starts nor stops (the edge box of seed 000).
  `launch` reports an error, `retire` retires nothing, `inventory` is empty; capacity is counted
  from the workers' own heartbeats.
- `local`   — `ebbtide worker --pool NAME` processes on this machine, tracked by pid files so a
  restarted controller adopts them; `retire` sends SIGTERM.
- `ec2`     — RunInstances from a launch template (spot or on-demand per pool), tagged
  `ebbtide:pool=<name>`; `inventory` is DescribeInstances by that tag; `retire` is
  TerminateInstances. A spot shortage or quota error comes back in `LaunchResult.error` with the
  ids that did launch, so the controller falls back to the next pool.
- `asg`     — launch/retire change the group's desired capacity; busy instances carry
  instance scale-in protection, and `retire(ids)` uses TerminateInstanceInAutoScalingGroup with
  ShouldDecrementDesiredCapacity so only the named idle instances go.
- `ecs-service` — launch/retire change the service's desired count; ECS picks which task stops,
  so `retires_specific` is False: the controller sets `drain` on the workers it wants gone and
  the workers toggle ECS task scale-in protection (busy = protected) themselves.
- `ecs-task` — one RunTask per job (single-run mode); `retire` is StopTask, used only on tasks
  that never reported healthy.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Instance:
    """One worker as the provider knows it.

    `id` is what `retire` takes (instance id, task arn, `local:<pid>`); `worker_id` is the id the
    worker reports in its heartbeats, when the provider chose it at launch.
    """

    id: str
    pool: str
    launched_at: float
    worker_id: str | None = None
    pid: int | None = None
    spot: bool = False
    state: str = "running"  # provider's own word: pending, running, stopping


_NOT_IN_WORKER_IDS = re.compile(r"[^A-Za-z0-9_.:@-]")  # the catalog's worker ids (catalog/sql_core.py)


def worker_id_for(inst: Instance) -> str:
    """The worker id a launched or adopted instance is registered under until its worker reports:
    its `worker_id`, else its instance id made a valid catalog id (an ECS task ARN holds `/`, a
    placeholder `#`; they become `-`, and an id over 128 characters keeps a digest of the rest)."""
    if inst.worker_id:
        return inst.worker_id
    wid = _NOT_IN_WORKER_IDS.sub("-", inst.id)
    if len(wid) > 128:
        wid = wid[:119] + "-" + hashlib.sha1(inst.id.encode()).hexdigest()[:8]
    return wid


@dataclass(frozen=True)
class LaunchResult:
    requested: int
    instances: tuple[Instance, ...] = ()
    error: str | None = None  # set when fewer than `requested` launched: spot shortage, quota

    @property
    def launched(self) -> int:
        return len(self.instances)

    @property
    def short(self) -> int:
        return max(0, self.requested - self.launched)


@runtime_checkable
class Provider(Protocol):
    name: str  # backend kind: "static", "local", "ec2", …
    pool: str
    retires_specific: bool  # can stop one named worker (False: the controller drains instead)

    def launch(self, n: int) -> LaunchResult:
        """Start up to `n` workers; never raises for capacity problems, reports them instead."""
        ...

    def retire(self, ids: Sequence[str]) -> list[str]:
        """Stop these instances (idle or never healthy); returns the ids actually stopped."""
        ...

    def inventory(self) -> list[Instance]:
        """This pool's instances, found by tag or marker, so a restarted controller adopts them."""
        ...


@runtime_checkable
class ProtectsBusy(Protocol):
    """A provider whose platform can choose which instance to stop (an Auto Scaling group)."""

    def sync_protection(self, busy: Collection[str]) -> object:
        """Turn scale-in protection on for exactly these instance ids, off for the rest."""
        ...
