"""EC2 pools: RunInstances from a launch template, spot or on-demand, one tagged instance per worker.

Pool options (under `fleet.pools[].options`):
  launch_template   name or `lt-…` id (required); `template_version` (default: the template's default)
  instance_type     overrides the template's
  subnets           list; a capacity error in one subnet (one AZ) tries the next before giving up
  security_groups   list of sg ids (only when the template has no network interfaces)
  spot_max_price    dollars per hour, spot pools only (default: the on-demand price cap)
  user_data         "ebbtide" (default): this provider writes the user data, a script that exports
                    EBBTIDE_WORKER_ID / EBBTIDE_POOL / EBBTIDE_PROVIDER_ID (the instance id, from
                    IMDSv2) into /etc/ebbtide/worker.env and runs `worker_command`;
                    "template": keep the template's own user data (it must then export those
                    variables itself; `bootstrap_script()` prints one to copy)
  worker_command    default `ebbtide worker --pool <pool>` (+ `--idle-exit` from the pool);
                    "" writes only the env file, for an AMI whose systemd unit starts the worker
  tags              list of "Key=Value" added to every instance (a `Name` here replaces ebbtide's)
  region, endpoint_url, profile   per-pool AWS overrides

Every instance is tagged `ebbtide:pool=<pool>` and `ebbtide:worker-id=<id>`; `inventory` finds them
by that tag, so a restarted controller adopts its instances.

A pool with `workers: foreign` (docs/foreign-pools.md) runs the user's own workers: the launch
template's own user data is kept (`user_data` defaults to "template"; "ebbtide" is refused), and
health and busy-ness come from the pool's probe, not from heartbeats.
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

log = logging.getLogger("ebbtide.fleet.ec2")

LIVE_STATES = ("pending", "running")
# Every AWS action this provider calls: the scaler's IAM policy is generated from this (ebbtide.deploy).
ACTIONS = ("ec2:RunInstances", "ec2:CreateTags", "ec2:DescribeInstances", "ec2:TerminateInstances",
           "iam:PassRole")
PERMISSIONS = aws.sentence(ACTIONS)


def bootstrap_script(pool: str, worker_id: str | None, command: str) -> str:
    """User data that tells the worker who it is; worker id defaults to the instance id (ASG)."""
    wid = shlex.quote(worker_id) if worker_id else "$INSTANCE_ID"
    run = f"exec {command}\n" if command else ""
    return (
        "#!/bin/bash\n"
        f"# ebbtide worker bootstrap for fleet pool {pool}\n"
        "set -euo pipefail\n"
        "IMDS=http://169.254.169.254/latest\n"
        'TOKEN=$(curl -sf -X PUT "$IMDS/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 300")\n'
        'INSTANCE_ID=$(curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS/meta-data/instance-id")\n'
        "install -d -m 0755 /etc/ebbtide\n"
        "cat > /etc/ebbtide/worker.env <<EOF\n"
        f"EBBTIDE_POOL={shlex.quote(pool)}\n"
        f"EBBTIDE_WORKER_ID={wid}\n"
        "EBBTIDE_PROVIDER_ID=$INSTANCE_ID\n"
        "EOF\n"
        "set -a; . /etc/ebbtide/worker.env; set +a\n"
        f"{run}"
    )


def user_tags(pairs: Sequence[str], key: str) -> dict[str, str]:
    """`["Name=scalereach-spot-worker", "ManagedBy=auto-scaler"]` → a dict (pure)."""
    out: dict[str, str] = {}
    for pair in pairs:
        k, sep, v = pair.partition("=")
        if not sep or not k.strip():
            raise ConfigError(f"{key}: {pair!r} is not Key=Value",
                              hint='e.g. tags: ["ManagedBy=auto-scaler"]')
        out[k.strip()] = v.strip()
    return out


class Ec2Provider:
    name = "ec2"
    retires_specific = True

    def __init__(self, pool: PoolConfig, settings: Settings, clock: Clock, client: Any = None) -> None:
        self.pool = pool.name
        self.config = pool
        self.clock = clock
        opts = aws.PoolOptions(pool)
        self.template = opts.required("launch_template", hint="name or lt-… id of an EC2 launch template")
        self.template_version = opts.optional("template_version")
        self.instance_type = opts.optional("instance_type")
        self.subnets = opts.strings("subnets")
        self.security_groups = opts.strings("security_groups")
        self.spot_max_price = opts.optional("spot_max_price")
        foreign = pool.workers == "foreign"
        mode = opts.optional("user_data") or ("template" if foreign else "ebbtide")
        if mode not in ("ebbtide", "template"):
            raise ConfigError(f"{opts.key('user_data')} must be ebbtide or template, got {mode!r}")
        if foreign and mode != "template":
            raise ConfigError(
                f"{opts.key('user_data')}: a foreign pool keeps its launch template's user data",
                hint="remove user_data (or set it to template): ebbtide does not start foreign workers",
            )
        self.tags = user_tags(opts.strings("tags"), opts.key("tags"))
        self.user_data_mode = mode
        raw_cmd = pool.options.get("worker_command")
        self.command = shlex.join(worker_command(pool)) if raw_cmd is None else str(raw_cmd)
        self.client = client or aws.client("ec2", settings, opts)
        self._subnet = 0

    # launch --------------------------------------------------------------------------------------
    def launch(self, n: int) -> LaunchResult:
        started: list[Instance] = []
        for _ in range(n):
            inst, err = self._launch_one()
            if inst is None:
                log.warning("ec2 launch stopped", extra={"pool": self.pool, "asked": n,
                                                         "got": len(started), "error": err})
                return LaunchResult(n, tuple(started), err)
            started.append(inst)
        log.info("ec2 instances launched", extra={"pool": self.pool, "count": len(started),
                                                  "spot": self.config.spot})
        return LaunchResult(n, tuple(started))

    def _launch_one(self) -> tuple[Instance | None, str | None]:
        """One instance; a capacity error moves on to the next subnet (AZ) before giving up."""
        from botocore.exceptions import BotoCoreError, ClientError

        wid = f"{self.pool}-{uuid.uuid4().hex[:12]}"
        subnets: list[str | None] = list(self.subnets) or [None]
        err = "no subnet tried"
        for i in range(len(subnets)):
            subnet = subnets[(self._subnet + i) % len(subnets)]
            try:
                resp = self.client.run_instances(**self.request(wid, subnet, attempt=i))
            except ClientError as e:
                err = aws.launch_error(e, PERMISSIONS) + (f" [subnet {subnet}]" if subnet else "")
                if aws.is_capacity(e):
                    continue  # another AZ may have room
                return None, err
            except BotoCoreError as e:
                return None, aws.launch_error(e, PERMISSIONS)
            self._subnet = (self._subnet + i + 1) % len(subnets)  # spread the next one
            raw = resp["Instances"][0]
            return Instance(raw["InstanceId"], self.pool, self.clock.now(), worker_id=wid,
                            spot=self.config.spot, state=raw.get("State", {}).get("Name", "pending")), None
        return None, err

    def request(self, worker_id: str, subnet: str | None, attempt: int = 0) -> dict[str, Any]:
        """The RunInstances arguments for one worker (pure, so a test can read them)."""
        key = "LaunchTemplateId" if self.template.startswith("lt-") else "LaunchTemplateName"
        template: dict[str, str] = {key: self.template}
        if self.template_version:
            template["Version"] = self.template_version
        mine = {TAG_POOL: self.pool, TAG_WORKER: worker_id, "Name": f"ebbtide-{self.pool}"}
        mine.update({k: v for k, v in self.tags.items() if k not in (TAG_POOL, TAG_WORKER)})
        tags = [{"Key": k, "Value": v} for k, v in mine.items()]
        req: dict[str, Any] = {
            "MinCount": 1, "MaxCount": 1, "LaunchTemplate": template,
            "ClientToken": f"{worker_id}-{attempt}",  # botocore's retries never launch twice
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}],
        }
        if self.instance_type:
            req["InstanceType"] = self.instance_type
        if subnet:
            req["SubnetId"] = subnet
        if self.security_groups:
            req["SecurityGroupIds"] = self.security_groups
        if self.config.spot:
            spot: dict[str, str] = {"SpotInstanceType": "one-time",
                                    "InstanceInterruptionBehavior": "terminate"}
            if self.spot_max_price:
                spot["MaxPrice"] = self.spot_max_price
            req["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": spot}
        if self.user_data_mode == "ebbtide":
            req["UserData"] = bootstrap_script(self.pool, worker_id, self.command)
        return req

    # inventory / retire --------------------------------------------------------------------------
    def inventory(self) -> list[Instance]:
        return [self._instance(raw) for raw in self._describe()]

    def _describe(self, ids: Sequence[str] = ()) -> list[dict[str, Any]]:
        filters = [{"Name": f"tag:{TAG_POOL}", "Values": [self.pool]},
                   {"Name": "instance-state-name", "Values": list(LIVE_STATES)}]
        args: dict[str, Any] = {"Filters": filters}
        if ids:
            args["InstanceIds"] = list(ids)
        pages = aws.call("ec2 DescribeInstances", PERMISSIONS,
                         lambda **kw: list(self.client.get_paginator("describe_instances").paginate(**kw)),
                         **args)
        return [raw for page in pages for r in page.get("Reservations", []) for raw in r.get("Instances", [])]

    def _instance(self, raw: dict[str, Any]) -> Instance:
        tags = {t["Key"]: t["Value"] for t in raw.get("Tags", [])}
        launched = raw.get("LaunchTime")
        return Instance(
            raw["InstanceId"], self.pool,
            launched.timestamp() if launched is not None else self.clock.now(),
            worker_id=tags.get(TAG_WORKER),
            spot=raw.get("InstanceLifecycle") == "spot",
            state=raw.get("State", {}).get("Name", "running"),
        )

    def retire(self, ids: Sequence[str]) -> list[str]:
        """Terminate only instances that carry this pool's tag: a wrong id never kills a stranger."""
        wanted = {i for i in ids if i.startswith("i-")}
        if not wanted:
            return []
        ours = [raw["InstanceId"] for raw in self._describe_safe(sorted(wanted))]
        done: list[str] = []
        for batch in aws.chunks(ours, 100):
            resp = aws.call("ec2 TerminateInstances", PERMISSIONS, self.client.terminate_instances,
                            InstanceIds=batch)
            done += [t["InstanceId"] for t in resp.get("TerminatingInstances", [])]
        if done:
            log.info("ec2 instances terminated", extra={"pool": self.pool, "count": len(done)})
        return done

    def _describe_safe(self, ids: list[str]) -> list[dict[str, Any]]:
        """DescribeInstances by id fails as a whole on one unknown id; fall back to the tag listing."""
        try:
            return self._describe(ids)
        except aws.CloudError:
            wanted = set(ids)
            return [raw for raw in self._describe() if raw["InstanceId"] in wanted]
