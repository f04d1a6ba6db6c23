"""Auto Scaling group pools: the group's desired capacity, with instance scale-in protection.

Pool options: `asg_name` (required); `region`, `endpoint_url`, `profile`. (`asg_steps` is read by
`ebbtide doctor` only.) The group's launch template starts the worker; its user data must export
EBBTIDE_PROVIDER_ID = the instance id (see `ec2.bootstrap_script(pool, None, cmd)`), since the
group, not ebbtide, picks the instance ids.

The group launches asynchronously, so capacity that was asked for but has no instance yet shows
up as stable placeholders (`asg:<name>#pending-<k>`); retiring a placeholder that never became an
instance (the controller's reaping) lowers the desired capacity again. A spot shortage inside the
group is therefore seen as placeholders that never turn into instances, not as a launch error.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import Any

from ebbtide.clock import Clock
from ebbtide.config.sections import PoolConfig
from ebbtide.config.settings import Settings
from ebbtide.fleet.providers import aws
from ebbtide.fleet.providers.base import Instance, LaunchResult

log = logging.getLogger("ebbtide.fleet.asg")

# Every AWS action this provider calls: the scaler's IAM policy is generated from this (ebbtide.deploy).
ACTIONS = ("autoscaling:DescribeAutoScalingGroups", "autoscaling:SetDesiredCapacity",
           "autoscaling:TerminateInstanceInAutoScalingGroup", "autoscaling:SetInstanceProtection",
           "ec2:DescribeInstances")
PERMISSIONS = aws.sentence(ACTIONS)
LIVE_STATES = frozenset({"Pending", "Pending:Wait", "Pending:Proceed", "InService"})
PROTECT_BATCH = 50  # SetInstanceProtection takes at most 50 ids


class AsgProvider:
    name = "asg"
    retires_specific = True

    def __init__(
        self, pool: PoolConfig, settings: Settings, clock: Clock,
        client: Any = None, ec2_client: Any = None,
    ) -> None:
        self.pool = pool.name
        self.config = pool
        self.clock = clock
        opts = aws.PoolOptions(pool)
        self.group = opts.required("asg_name", hint="the Auto Scaling group this pool scales")
        self.client = client or aws.client("autoscaling", settings, opts)
        self.ec2 = ec2_client or aws.client("ec2", settings, opts)
        self.prefix = f"asg:{self.group}"
        self.protected: set[str] = set()  # as of the last describe

    # reads ---------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        resp = aws.call("DescribeAutoScalingGroups", PERMISSIONS, self.client.describe_auto_scaling_groups,
                        AutoScalingGroupNames=[self.group])
        groups = resp.get("AutoScalingGroups", [])
        if not groups:
            raise aws.CloudError(f"Auto Scaling group {self.group!r} not found",
                                 hint=f"check {aws.PoolOptions(self.config).key('asg_name')} and the region")
        group: dict[str, Any] = groups[0]
        live = [i for i in group.get("Instances", []) if i.get("LifecycleState") in LIVE_STATES]
        group["Live"] = live
        self.protected = {i["InstanceId"] for i in live if i.get("ProtectedFromScaleIn")}
        return group

    def inventory(self) -> list[Instance]:
        group = self.describe()
        live = group["Live"]
        details = self._details([i["InstanceId"] for i in live])
        out = []
        for i in live:
            iid = i["InstanceId"]
            raw = details.get(iid, {})
            launched = raw.get("LaunchTime")
            out.append(Instance(
                iid, self.pool, launched.timestamp() if launched is not None else self.clock.now(),
                spot=raw.get("InstanceLifecycle") == "spot", state=str(i.get("LifecycleState", "")).lower(),
            ))
        waiting = max(0, int(group.get("DesiredCapacity", 0)) - len(live))
        out += [Instance(aws.pending_id(self.prefix, k), self.pool, self.clock.now(), state="pending")
                for k in range(1, waiting + 1)]
        return out

    def _details(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Launch time and spot flag, which the group listing lacks."""
        out: dict[str, dict[str, Any]] = {}
        for batch in aws.chunks(ids, 200):
            pages = aws.call("ec2 DescribeInstances", PERMISSIONS,
                             lambda **kw: list(self.ec2.get_paginator("describe_instances").paginate(**kw)),
                             InstanceIds=batch)
            for page in pages:
                for r in page.get("Reservations", []):
                    for raw in r.get("Instances", []):
                        out[raw["InstanceId"]] = raw
        return out

    # launch --------------------------------------------------------------------------------------
    def launch(self, n: int) -> LaunchResult:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            group = self.describe()
            desired, top = int(group.get("DesiredCapacity", 0)), int(group.get("MaxSize", 0))
            new = min(desired + n, top)
            if new > desired:
                self.client.set_desired_capacity(AutoScalingGroupName=self.group, DesiredCapacity=new,
                                                 HonorCooldown=False)
            after = self.describe()
        except aws.CloudError as e:
            return LaunchResult(n, error=str(e))
        except (ClientError, BotoCoreError) as e:
            return LaunchResult(n, error=aws.launch_error(e, PERMISSIONS))
        asked = new - desired
        before = {i["InstanceId"] for i in group["Live"]}
        fresh = [i for i in after["Live"] if i["InstanceId"] not in before][:asked]
        now = self.clock.now()
        got = [Instance(i["InstanceId"], self.pool, now, state="pending") for i in fresh]
        # the rest is on its way: the highest placeholder slots, the ones inventory will list
        waiting = max(0, int(after.get("DesiredCapacity", 0)) - len(after["Live"]))
        for k in range(waiting - (asked - len(got)) + 1, waiting + 1):
            got.append(Instance(aws.pending_id(self.prefix, k), self.pool, now, state="pending"))
        err = None
        if asked < n:
            err = (f"Auto Scaling group {self.group} is at its max size {top} "
                   f"(hint: raise MaxSize, or lower this pool's max to {top})")
        log.info("asg desired capacity raised", extra={"pool": self.pool, "group": self.group,
                                                       "from": desired, "to": new})
        return LaunchResult(n, tuple(got), err)

    # retire / protect ----------------------------------------------------------------------------
    def retire(self, ids: Sequence[str]) -> list[str]:
        """Terminate these idle instances and lower the desired capacity with them.

        Placeholders (capacity never delivered) lower the desired capacity only.
        """
        from botocore.exceptions import ClientError

        group = self.describe()
        live = {i["InstanceId"] for i in group["Live"]}
        done: list[str] = []
        for iid in ids:
            if iid not in live:
                continue
            try:
                self.client.terminate_instance_in_auto_scaling_group(
                    InstanceId=iid, ShouldDecrementDesiredCapacity=True)
            except ClientError as e:
                if aws.error_code(e) != "ValidationError":  # e.g. below MinSize: skip this one
                    raise aws.CloudError(f"TerminateInstanceInAutoScalingGroup failed: {aws.describe(e)}",
                                         hint=aws.hint_for(e, PERMISSIONS)) from None
                log.warning("asg instance not retired", extra={"pool": self.pool, "instance": iid,
                                                               "error": aws.describe(e)})
                continue
            done.append(iid)
        placeholders = [i for i in ids if aws.is_pending(i) and i.startswith(self.prefix + "#")]
        if placeholders:
            group = self.describe()
            desired = int(group.get("DesiredCapacity", 0))
            waiting = max(0, desired - len(group["Live"]))
            drop = min(len(placeholders), waiting)
            target = max(int(group.get("MinSize", 0)), desired - drop)
            if target < desired:
                aws.call("SetDesiredCapacity", PERMISSIONS, self.client.set_desired_capacity,
                         AutoScalingGroupName=self.group, DesiredCapacity=target, HonorCooldown=False)
                done += placeholders[: desired - target]
        if done:
            log.info("asg capacity retired",
                     extra={"pool": self.pool, "group": self.group, "count": len(done)})
        return done

    def protect(self, ids: Sequence[str], on: bool) -> list[str]:
        """Instance scale-in protection: busy instances on, idle ones off (so the group's own
        scale-in, or a lowered desired capacity, can only pick idle ones)."""
        real = [i for i in ids if not aws.is_pending(i)]
        for batch in aws.chunks(real, PROTECT_BATCH):
            aws.call("SetInstanceProtection", PERMISSIONS, self.client.set_instance_protection,
                     AutoScalingGroupName=self.group, InstanceIds=batch, ProtectedFromScaleIn=on)
        if real:
            (self.protected.update if on else self.protected.difference_update)(real)
            log.info("asg scale-in protection set", extra={"pool": self.pool, "on": on, "count": len(real)})
        return real

    def sync_protection(self, busy: Collection[str]) -> tuple[list[str], list[str]]:
        """Protect exactly the busy instances (ids as in `inventory`); changes only what differs
        from the group's state at the last describe. Returns (protected, unprotected)."""
        group = self.describe()
        live = {i["InstanceId"] for i in group["Live"]}
        want = {i for i in busy if i in live}
        on = self.protect(sorted(want - self.protected), True)
        off = self.protect(sorted((self.protected & live) - want), False)
        return on, off
