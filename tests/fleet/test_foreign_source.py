"""Foreign pools: the config key, the pure rules of `foreign_worker` and the BullMQ views, and the
controller steering a foreign pool through `ForeignWorkerSource`.

The probe here is a stand-in (a dict of what the queue would say): the real BullMQ probe is run
against real BullMQ workers in tests/fleet/test_foreign_bullmq.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ebbtide.catalog.states import WorkerState
from ebbtide.clock import VirtualClock
from ebbtide.config import load_settings
from ebbtide.fleet.foreign.base import BusyEvidence, ForeignView, ProbeResult
from ebbtide.fleet.foreign.bullmq import views_from, worker_names
from ebbtide.fleet.foreign.source import ForeignWorkerSource, foreign_worker
from ebbtide.fleet.model import WorkerView
from ebbtide.fleet.providers.base import Instance

B, IDLE, BOOT = WorkerState.BUSY, WorkerState.IDLE, WorkerState.BOOTING


def test_config_key() -> None:
    ok = load_settings(path=None, env={}, overrides={"fleet": {
        "depth_source": "bullmq://127.0.0.1:6379/0/q",
        "pools": [{"name": "spot", "provider": "ec2", "workers": "foreign",
                   "options": {"launch_template": "lt-1"}}]}})
    assert ok.fleet.pools[0].workers == "foreign"
    with pytest.raises(Exception, match="depth_source"):
        load_settings(path=None, env={}, overrides={"fleet": {"pools": [
            {"name": "spot", "provider": "ec2", "workers": "foreign"}]}})
    for provider in ("local", "ecs-task"):
        with pytest.raises(Exception, match="foreign workers need provider"):
            load_settings(path=None, env={}, overrides={"fleet": {
                "depth_source": "bullmq://h:1/0/q",
                "pools": [{"name": "l", "provider": provider, "workers": "foreign"}]}})


def _w(state: WorkerState, last_seen: float = 0.0) -> WorkerView:
    return WorkerView("w1", "spot", state, 0.0, last_seen, provider_id="i-1")


def test_foreign_worker_rules() -> None:
    up_idle = ForeignView("i-1", True, False, BusyEvidence.NO_LOCK)
    up_busy = ForeignView("i-1", True, True, BusyEvidence.LOCK_HELD, ("7",))
    up_unknown = ForeignView("i-1", True, None, BusyEvidence.IN_FLIGHT_AGGREGATE)
    down = ForeignView("i-1", False, None, BusyEvidence.UNKNOWN)
    # healthy only once connected
    assert foreign_worker(_w(BOOT), down, 0, 50.0).state == BOOT
    v = foreign_worker(_w(BOOT), up_idle, 3, 50.0)
    assert (v.state, v.last_seen) == (IDLE, 50.0)
    assert foreign_worker(_w(IDLE), up_busy, 1, 50.0).state == B
    # unknown busy-ness: busy while anything is in flight, idle only when nothing is
    assert foreign_worker(_w(IDLE), up_unknown, 1, 50.0).state == B
    assert foreign_worker(_w(IDLE), up_unknown, 0, 50.0).state == IDLE
    # a lock held while the connection is away still means alive and busy
    held = ForeignView("i-1", False, True, BusyEvidence.LOCK_HELD)
    assert foreign_worker(_w(IDLE, 10.0), held, 1, 50.0).state == B
    # connected before, gone now: silence (hung timeout), never idle while something is in flight
    gone = foreign_worker(_w(IDLE, 10.0), down, 2, 50.0)
    assert (gone.state, gone.last_seen) == (B, 10.0)
    assert foreign_worker(_w(IDLE, 10.0), down, 0, 50.0).state == IDLE
    # probe failed: held busy, last seen unchanged
    failed = foreign_worker(_w(IDLE, 10.0), down, None, 50.0)
    assert (failed.state, failed.last_seen) == (B, 10.0)


def test_bullmq_names_and_views() -> None:
    listing = [
        "bull:cTE=:w:i-1",  # base64("q1") = cTE=
        "bull:cTE=:w:i-2:1",
        "bull:cTE=",  # unnamed worker: cannot be matched
        "bull:b3RoZXI=:w:i-3",  # another queue
        "",
    ]
    assert worker_names(listing, "bull", "q1") == ["i-1", "i-2:1"]
    insts = [Instance(i, "spot", 0.0) for i in ("i-1", "i-2", "i-3")]
    r = views_from(insts, ["i-1", "i-2:1"], [("5", "i-2:1", True), ("6", "i-1", False)])
    assert r.in_flight == 2
    assert (r.views["i-1"].busy, r.views["i-1"].how) == (False, BusyEvidence.NO_LOCK)  # lock lapsed
    assert (r.views["i-2"].busy, r.views["i-2"].jobs) == (True, ("5",))
    assert (r.views["i-3"].connected, r.views["i-3"].busy) == (False, None)
    # a job without processedBy: nobody without a lock of its own can be said idle
    r2 = views_from(insts, ["i-1"], [("9", None, True)])
    assert (r2.views["i-1"].busy, r2.views["i-1"].how) == (None, BusyEvidence.IN_FLIGHT_AGGREGATE)


class _Probe:
    def __init__(self) -> None:
        self.result = ProbeResult()
        self.fail = False

    def probe(self, instances: Sequence[Instance]) -> ProbeResult:
        if self.fail:
            raise ConnectionError("redis down")
        return self.result

    def close(self) -> None:
        pass


def test_source_overlays_probe_and_ignores_drain() -> None:
    from fleet_fakes import FakeWorkers

    clock = VirtualClock(100.0)
    inner = FakeWorkers(clock)
    inner.register("w1", "spot", "i-1", 0.2)
    inner.register("w2", "other", None, 0.0)
    probe = _Probe()
    seen: list[tuple[str, WorkerState]] = []

    class Sight:
        def observed(self, worker_id: str, pool: str, state: WorkerState, provider_id: str | None) -> None:
            seen.append((worker_id, state))

    src = ForeignWorkerSource(inner, {"spot": probe}, clock, sightings=Sight())
    assert {w.id: w.state for w in src.workers()} == {"w1": BOOT, "w2": BOOT}
    probe.result = ProbeResult({"i-1": ForeignView("i-1", True, True, BusyEvidence.LOCK_HELD)}, 1)
    assert {w.id: w.state for w in src.workers()}["w1"] == B
    assert seen == [("w1", B)]
    src.workers()
    assert seen == [("w1", B)]  # unchanged state: not re-written at once
    src.set_drain("w1")
    assert not inner.rows["w1"].drain  # a foreign worker cannot drain
    src.set_drain("w2")
    assert inner.rows["w2"].drain
    probe.fail = True
    assert {w.id: w.state for w in src.workers()}["w1"] == BOOT  # inner row never heartbeated here


def test_static_foreign_pool_counts_connected_always_on_workers() -> None:
    from fleet_fakes import FakeWorkers

    clock = VirtualClock(100.0)
    inner = FakeWorkers(clock)
    probe = _Probe()
    src = ForeignWorkerSource(inner, {"primary": probe}, clock, static_names={"primary": ["i-prim"]})
    assert src.workers() == []  # not connected: not counted
    probe.result = ProbeResult({"i-prim": ForeignView("i-prim", True, True, BusyEvidence.LOCK_HELD)}, 1)
    [w] = src.workers()
    got = (w.id, w.pool, w.state, w.provider_id, w.last_seen)
    assert got == ("primary-i-prim", "primary", B, "i-prim", 100.0)
    probe.fail = True
    assert src.workers() == []


def test_static_foreign_pool_needs_worker_names() -> None:
    from ebbtide.errors import ConfigError
    from ebbtide.fleet.foreign import static_worker_names

    s = load_settings(path=None, env={}, overrides={"fleet": {
        "depth_source": "bullmq://127.0.0.1:6379/0/q",
        "pools": [{"name": "primary", "provider": "static", "workers": "foreign"},
                  {"name": "named", "provider": "static", "workers": "foreign",
                   "options": {"worker_names": ["i-0primary"]}}]}})
    with pytest.raises(ConfigError, match="worker_names"):
        static_worker_names(s.fleet.pools[0])
    assert static_worker_names(s.fleet.pools[1]) == ("i-0primary",)
