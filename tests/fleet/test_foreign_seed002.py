"""Seed 002 end to end: ebbtide as the scaler only, for the user's own BullMQ workers on EC2 spot.

Real parts: BullMQ 6 (Node, npm) on the real Redis — the user's producer adds 20 jobs and the user's
workers process them —, EC2 from moto in server mode, over HTTP, and the real controller with the
scaler-only services (`open_services` opens the catalog and reads the user's queue, nothing else).

moto runs no instances, so a real Node BullMQ worker stands in for each moto instance: when the
test sees a new instance of the pool, it starts `foreign_js/worker.js` named with the instance id
(`new Worker(queue, fn, { name: instanceId })`, as docs/foreign-pools.md tells users to), a little
later, as a boot would; when the instance is terminated, the test SIGKILLs its worker, as the
instance's end would, and checks that it held no job at that moment.

The seed's thresholds (≥5 waiting → 1 spot, ≥15 → 2, 0 waiting → terminate all, cap 2) are used
with their times shrunk (hold 3 s instead of 5 min, idle 1 s instead of 10 min; jobs take 5 s) so
the policy asks for zero while jobs are still active: the seed's actuation would kill them there;
ebbtide must not. Whether a spot worker still holds a job once nothing has waited for 1 s depends on
the workers' phase (the primary may well take the last job as the spots finish theirs), so the last
`GATED` jobs are held by their workers until the test has seen the policy ask for zero: the primary
runs one job at a time, so at least one of them is on a spot worker then.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest
from aws_env import MOTO_AMI, REGION, client, suffix
from foreign_env import NodeWorker, producer

from ebbtide.catalog.states import WorkerState
from ebbtide.config import load_settings
from ebbtide.fleet.causes import Cause, Note
from ebbtide.fleet.foreign.source import ForeignWorkerSource
from ebbtide.queue.readonly import ReadOnlyQueue

SEED_USER_DATA = """#!/bin/bash
cd /opt/scalereach
git pull origin main
/home/ubuntu/.bun/bin/bun install --frozen-lockfile
npx pm2 start ecosystem.config.js
npx pm2 save
"""
SEED_TAGS = {"Name": "scalereach-spot-worker", "ManagedBy": "auto-scaler"}
JOBS = 20
GATED = 2  # the last jobs, held until the policy asks for zero (> the primary's concurrency of 1)
BOOT = 1.5  # seconds from an instance's launch to its worker starting
PRIMARY = "i-0primary"  # the always-on t3.large: its own worker, a static foreign pool


def _template(endpoint: str) -> str:
    ec2 = client("ec2", endpoint)
    name = f"scalereach-worker-spot-template-{suffix()}"
    ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={
        "ImageId": MOTO_AMI, "InstanceType": "c6i.xlarge",
        "UserData": base64.b64encode(SEED_USER_DATA.encode()).decode()})
    return name


def _pool_instances(ec2: Any, pool: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in ec2.describe_instances(Filters=[{"Name": "tag:ebbtide:pool", "Values": [pool]}])["Reservations"]:
        for i in r["Instances"]:
            out[i["InstanceId"]] = i
    return out


@pytest.mark.slow
def test_seed_002_scaler_only_end_to_end(
    moto_endpoint: str, redis_url: str, queue_name: str, tmp_path: Path
) -> None:
    from ebbtide.fleet.build import build_controller
    from ebbtide.services import open_services, scaler_only

    pool = f"spot-{suffix()}"
    settings = load_settings(path=None, env={}, overrides={
        "data_dir": str(tmp_path / "data"),
        "aws": {"region": REGION, "endpoint_url": moto_endpoint},
        "fleet": {
            "depth_source": f"bullmq://127.0.0.1:6379/0/{queue_name}",
            "interval": 0.5,
            "drain_idle_after": 1.0,
            "policy": {"kind": "sustained", "hold": 3, "idle_to_zero": 1, "cap": 2,
                       "thresholds": [{"at_least": 5, "workers": 1}, {"at_least": 15, "workers": 2}]},
            "pools": [{"name": "primary", "provider": "static", "workers": "foreign", "min": 1, "max": 1,
                       "options": {"worker_names": [PRIMARY]}},
                      {"name": pool, "provider": "ec2", "workers": "foreign", "spot": True, "max": 2,
                       "price_per_hour": 0.068, "boot_timeout": 120, "hung_timeout": 120,
                       "options": {"launch_template": _template(moto_endpoint),
                                   "tags": [f"{k}={v}" for k, v in SEED_TAGS.items()]}}],
        },
    })
    assert scaler_only(settings)
    services = open_services(settings)
    ec2 = client("ec2", moto_endpoint)
    workers: dict[str, NodeWorker] = {}
    primary: NodeWorker | None = None
    first_seen: dict[str, float] = {}
    booting_seen: set[str] = set()  # instances the scaler counted as booting before their worker connected
    killed_holding: dict[str, set[str]] = {}
    waiting_at_launch: list[int] = []
    try:
        assert isinstance(services.queue, ReadOnlyQueue)  # the user's queue, read only
        controller = build_controller(services)
        assert isinstance(controller.workers, ForeignWorkerSource)
        primary = NodeWorker("6", redis_url, queue_name, PRIMARY, job_ms=5000)
        primary.wait_for("ready")
        gate = tmp_path / "gate"  # created once the policy has asked for zero: the held jobs may end
        added = producer("6", redis_url, queue_name, "add", str(JOBS), str(gate), str(GATED))
        assert JOBS - 1 <= added["waiting"] <= JOBS  # the primary may have taken one already
        end = time.monotonic() + 300
        while time.monotonic() < end:
            controller.tick()
            for o in controller.last_outcomes:
                if o.launched:
                    waiting_at_launch.append(services.queue.stats().visible)
                if o.pool == pool and o.cause == Cause.SCALE_TO_ZERO:
                    gate.touch()
            now = time.monotonic()
            live = {k: v for k, v in _pool_instances(ec2, pool).items()
                    if v["State"]["Name"] in ("pending", "running")}
            rows = {w.provider_id: w for w in services.catalog.list_workers(pool=pool)}
            for iid in live:
                first_seen.setdefault(iid, now)
                if iid not in workers:
                    row = rows.get(iid)
                    if row is not None:
                        # healthy only after its worker connects: none has yet
                        assert row.state == WorkerState.BOOTING, row
                        booting_seen.add(iid)
                    if now - first_seen[iid] >= BOOT:
                        workers[iid] = NodeWorker("6", redis_url, queue_name, iid, job_ms=5000)
            for iid, w in workers.items():
                if iid not in live and iid not in killed_holding:
                    killed_holding[iid] = w.kill()  # the instance is gone: so is its worker
            done = {j for w in (*workers.values(), primary) for j in w.done()}
            if len(done) == JOBS and not live and workers:
                break
            time.sleep(0.3)
        else:
            state = producer("6", redis_url, queue_name, "report")
            raise AssertionError(f"not back to zero in time: {state}")

        # launched from the template, as spot, with the seed's tags and the template's own user data
        raw = _pool_instances(ec2, pool)
        assert 1 <= len(raw) <= 2 and set(raw) == set(workers)
        for iid, inst in raw.items():
            tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
            assert {k: tags[k] for k in SEED_TAGS} == SEED_TAGS
            assert inst["InstanceType"] == "c6i.xlarge" and inst.get("InstanceLifecycle") == "spot"
            ud = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")["UserData"]
            assert "EBBTIDE" not in base64.b64decode(ud.get("Value", "")).decode()
            assert inst["State"]["Name"] in ("shutting-down", "terminated")
        assert booting_seen == set(raw)
        # at the seed's thresholds: the first launch with ≥ 5 waiting, never more than the cap
        assert waiting_at_launch and all(w >= 5 for w in waiting_at_launch)
        decisions = services.catalog.recent_decisions(limit=500)
        # never terminated an instance whose worker held a job; every job ran once, none failed
        assert killed_holding == {iid: set() for iid in raw}
        report = producer("6", redis_url, queue_name, "report")
        assert report["counts"]["completed"] == JOBS and report["counts"]["failed"] == 0
        assert all(a["started"] == 1 for a in report["attempts"].values()), report["attempts"]
        by = {a["by"] for a in report["attempts"].values()}
        assert PRIMARY in by and by <= set(raw) | {PRIMARY}  # matched by name
        # the primary was counted as the static pool's one live worker
        assert any(d.pool == "primary" and d.running == 1 for d in decisions)
        # the policy asked for zero while jobs were active (the seed would have killed them there);
        # the controller held the busy ones and retired them once idle
        seen = [(d.cause, d.desired, d.running, d.busy, d.notes) for d in reversed(decisions)]
        assert any(d.cause == Cause.SCALE_TO_ZERO and d.busy > 0 for d in decisions), seen
        assert any(Note.PROTECT_BUSY in d.notes for d in decisions)
        assert not (tmp_path / "data" / "queue.db").exists()  # scaler-only: no ebbtide queue
    finally:
        for w in workers.values():
            w.stop()
        if primary is not None:
            primary.stop()
        services.close()
