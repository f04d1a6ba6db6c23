"""BullMQ depth against the real BullMQ (npm, run by Node) on the real Redis, for each supported
major version: ebbtide's counts must equal BullMQ's own `getJobCounts()` and `getWaitingCount()`.

The npm packages are installed by `make bullmq` (called by `make test`) under .cache/node/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ebbtide.clock import SYSTEM_CLOCK
from ebbtide.errors import ConfigError
from ebbtide.queue.base import DepthSource
from ebbtide.queue.bullmq import BullMQDepth, parse_bullmq_url
from ebbtide.queue.depth import open_depth_source

REPO = Path(__file__).resolve().parents[2]
NODE_DIR = REPO / ".cache" / "node"
SCRIPT = Path(__file__).parent / "bullmq_js" / "state.js"
VERSIONS = {"5": "bullmq5", "6": "bullmq6"}


def bullmq_dir(major: str) -> Path:
    d = NODE_DIR / VERSIONS[major]
    if not (d / "node_modules" / "bullmq").is_dir() or not shutil.which("node"):
        pytest.fail(f"BullMQ {major}.x is not installed under {d}; run `make bullmq` (needs node and npm)")
    return d


@pytest.fixture()
def queue_name(redis_url: str) -> Iterator[str]:
    name = f"video{uuid.uuid4().hex[:8]}"
    yield name
    r = redis.Redis.from_url(redis_url)
    for key in r.scan_iter(match=f"bull:{name}:*"):
        r.delete(key)
    r.close()


class NodeState:
    """state.js: builds the queue with real BullMQ, prints BullMQ's counts, holds active jobs."""

    def __init__(
        self,
        major: str,
        redis_url: str,
        name: str,
        plain: int,
        prio: int,
        delayed: int,
        active: int,
        paused: bool,
    ) -> None:
        env = dict(os.environ, BULLMQ_DIR=str(bullmq_dir(major)))
        args = [str(a) for a in (redis_url, name, plain, prio, delayed, active, int(paused))]
        self.proc = subprocess.Popen(
            ["node", str(SCRIPT), *args],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"state.js failed: {self.proc.stderr.read() if self.proc.stderr else ''}")
        self.reported = json.loads(line)

    def finish(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


@pytest.mark.parametrize("major", sorted(VERSIONS))
@pytest.mark.parametrize("paused", [False, True], ids=["running", "paused"])
def test_counts_equal_bullmqs_own(major: str, paused: bool, redis_url: str, queue_name: str) -> None:
    state = NodeState(major, redis_url, queue_name, plain=4, prio=3, delayed=2, active=2, paused=paused)
    try:
        src = BullMQDepth.from_url(f"bullmq://127.0.0.1:6379/0/{queue_name}")
        assert isinstance(src, DepthSource)
        c = src.counts()
        want = state.reported
        assert c.version == want["version"] and c.major == int(major)
        assert c.job_counts() == want["counts"]  # exactly getJobCounts() of this version
        assert c.waiting == want["waiting"] == 4  # getWaitingCount(): prioritized jobs are not "waiting"
        assert c.is_paused is want["isPaused"] is paused
        s = src.stats()
        # for scaling: what a worker could take now — nothing while the queue is paused
        assert (s.visible, s.in_flight, s.delayed) == ((0 if paused else 7), 2, 2)
        assert s.oldest_age is not None and 0 <= s.oldest_age < 120
        src.close()
    finally:
        state.finish()


def test_the_depth_source_writes_nothing(redis_url: str, queue_name: str) -> None:
    state = NodeState("6", redis_url, queue_name, plain=3, prio=0, delayed=0, active=0, paused=False)
    try:
        r = redis.Redis.from_url(redis_url)
        before = {k: r.dump(k) for k in r.scan_iter(match=f"bull:{queue_name}:*")}
        src = open_depth_source(f"bullmq://127.0.0.1:6379/0/{queue_name}", SYSTEM_CLOCK)
        for _ in range(3):
            src.stats()
        after = {k: r.dump(k) for k in r.scan_iter(match=f"bull:{queue_name}:*")}
        assert before == after
        r.close()
    finally:
        state.finish()


def test_legacy_marker_is_not_a_job(redis_url: str, queue_name: str) -> None:
    # BullMQ ≤ 4 left a "0:<ts>" marker at the tail of `wait`; current BullMQ cannot write one,
    # so it is written by hand here, as BullMQ's own getCounts.lua expects to find it.
    r = redis.Redis.from_url(redis_url)
    r.hset(f"bull:{queue_name}:meta", "version", "bullmq:5.1.0")
    r.lpush(f"bull:{queue_name}:wait", "0:1700000000000")
    r.lpush(f"bull:{queue_name}:wait", "1", "2")
    c = BullMQDepth(redis_url, queue_name).counts()
    assert (c.wait, c.waiting) == (2, 2)
    r.close()


def test_urls() -> None:
    u = parse_bullmq_url("bullmq://:s3cret@redis.internal:6380/2/videoProcessingQueue?prefix=jobs")
    assert (u.redis_url, u.queue, u.prefix) == (
        "redis://:s3cret@redis.internal:6380/2",
        "videoProcessingQueue",
        "jobs",
    )
    for bad in (
        "bullmq://host/videoProcessingQueue",
        "bullmq:///0/q",
        "bullmq://h:1/x/q",
        "redis://h/0/q",
        "bullmq://h:1/0/a:b",
    ):
        with pytest.raises(ConfigError):
            parse_bullmq_url(bad)
    with pytest.raises(ConfigError, match="not a depth source"):
        open_depth_source("amqp://x/y")


def test_the_fleet_scales_on_a_bullmq_queue(redis_url: str, queue_name: str, tmp_path: Path) -> None:
    from ebbtide.config import load_settings
    from ebbtide.fleet.build import build_controller
    from ebbtide.fleet.sources import DepthQueueSource
    from ebbtide.services import open_services

    state = NodeState("6", redis_url, queue_name, plain=5, prio=1, delayed=0, active=1, paused=False)
    try:
        overrides = {
            "data_dir": str(tmp_path / "data"),
            "fleet": {
                "depth_source": f"bullmq://127.0.0.1:6379/0/{queue_name}",
                "pools": [{"name": "spot", "provider": "static", "max": 2}],
            },
        }
        settings = load_settings(path=None, env={}, overrides=overrides)
        services = open_services(settings)
        try:
            controller = build_controller(services)
            assert isinstance(controller.queue_source, DepthQueueSource)
            view = controller.queue_source.observe_queue()
            assert (view.visible, view.in_flight) == (6, 1)
        finally:
            services.close()
    finally:
        state.finish()
    with pytest.raises(Exception, match="depth_source"):
        load_settings(path=None, env={}, overrides={"fleet": {"depth_source": "amqp://x/q"}})
