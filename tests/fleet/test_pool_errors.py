"""One failing pool never freezes the rest (issue 15), and hung workers are reaped.

The first tests drive the real controller with the decision-core fakes (fleet_fakes.py); the last
runs a real `ebbtide scaler` process whose Auto Scaling pool points at moto (server mode, over
HTTP) with a group that does not exist, so every call of that provider raises, next to a local
pool of real `ebbtide worker` processes that must scale up and down as usual.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import psutil
import yaml
from fleet_fakes import FakeProvider, Rig

from ebbtide.catalog.states import MediaState, WorkerState
from ebbtide.clock import SYSTEM_CLOCK
from ebbtide.config import load_settings
from ebbtide.config.sections import DeadlinePolicyConfig, PoolConfig
from ebbtide.fleet.causes import Cause, Note
from ebbtide.fleet.controller import BACKOFF_MAX
from ebbtide.fleet.policies import policy_for
from ebbtide.fleet.providers.base import Instance, LaunchResult
from ebbtide.fleet.providers.local import LocalProvider
from ebbtide.media.samples import generate_clip
from ebbtide.services import open_services
from ebbtide.worker.intake import submit_file

W = WorkerState
BROKEN = PoolConfig(name="broken", provider="ec2", max=3, price_per_hour=0.1, boot_time=10)
CLOUD = PoolConfig(name="cloud", provider="ec2", max=3, price_per_hour=0.5, boot_time=10)


class RaisingProvider(FakeProvider):
    """Expired credentials: every call raises."""

    def __init__(self, *a: object, **kw: object) -> None:
        super().__init__(*a, **kw)  # type: ignore[arg-type]
        self.calls = 0
        self.broken = True

    def _maybe_raise(self) -> None:
        self.calls += 1
        if self.broken:
            raise RuntimeError("ExpiredToken: the security token included in the request is expired")

    def launch(self, n: int) -> LaunchResult:
        self._maybe_raise()
        return super().launch(n)

    def retire(self, ids: Sequence[str]) -> list[str]:
        self._maybe_raise()
        return super().retire(ids)

    def inventory(self) -> list[Instance]:
        self._maybe_raise()
        return super().inventory()


def _rig() -> tuple[Rig, RaisingProvider]:
    rig = Rig([BROKEN, CLOUD], policy_for(DeadlinePolicyConfig(target_ready=60, wait_value_per_hour=100)))
    bad = RaisingProvider("broken", rig.clock)
    rig.providers["broken"] = bad
    rig.controller = rig.new_controller()
    return rig, bad


def test_a_pool_whose_provider_always_raises_backs_off_while_the_next_pool_scales() -> None:
    rig, bad = _rig()
    rig.workers.speed = {"broken": 1.0, "cloud": 1.0}
    rig.queue.set(visible=2, waiting_work_seconds=2 * 600.0)
    d = rig.tick()
    assert d["cloud"] >= 1  # the cheaper pool failed: its share went to the next one
    assert rig.fakes["cloud"].launch_calls
    err = rig.controller.pool_errors()["broken"]
    assert err.op == "inventory" and "ExpiredToken" in err.message and err.streak == 1
    broken = [r for r in rig.recorder.records if r.pool == "broken"]
    assert broken[-1].cause == Cause.PROVIDER_ERROR and broken[-1].has(Note.BACKOFF)
    assert broken[-1].error is not None and "ExpiredToken" in broken[-1].error.message
    # it backs off: far fewer calls than ticks, pauses doubling up to BACKOFF_MAX
    for _ in range(200):  # 1000 s
        rig.workers.boot_all()
        rig.tick()
    assert bad.calls <= 10, bad.calls
    assert rig.controller.pool_errors()["broken"].retry_at - rig.clock.now() <= BACKOFF_MAX
    # the healthy pool scales down again once the work is done
    rig.queue.set(visible=0, waiting_work_seconds=0.0, arrival_rate=0.0)
    for _ in range(30):
        rig.tick()
    assert rig.count("cloud") == 0 and rig.fakes["cloud"].retired
    # credentials fixed: at its next retry the pool recovers and the error clears
    bad.broken = False
    for _ in range(int(BACKOFF_MAX / 5) + 2):
        rig.tick()
    assert rig.controller.pool_errors() == {}
    assert rig.recorder.records[-1].error is None or rig.recorder.records[-1].pool != "broken"
    assert [r for r in rig.recorder.records if r.pool == "broken"][-1].error is None


def test_hung_busy_worker_is_reaped_after_the_hung_timeout() -> None:
    pool = PoolConfig(name="cloud", provider="ec2", max=2, price_per_hour=0.5, hung_timeout=120)
    rig = Rig([pool], policy_for(DeadlinePolicyConfig(target_ready=60)))
    fake = rig.fakes["cloud"]
    fake.instances["i-1"] = Instance("i-1", "cloud", rig.clock.now(), worker_id="w1")
    rig.workers.add("w1", "cloud", W.BUSY, job_id="j1", provider_id="i-1", job_work_seconds=3600)
    rig.queue.set(in_flight=1, running_work_seconds=3600)
    for _ in range(23):  # 115 s without a heartbeat: still trusted
        rig.tick()
    assert fake.retired == [] and rig.workers.rows["w1"].state == W.BUSY
    for _ in range(3):  # ticks at 115, 120, 125 s
        rig.tick()
    assert fake.retired == ["i-1"]  # its instance is stopped, not left running forever
    assert rig.workers.rows["w1"].state == W.GONE
    assert any(r.has(Note.REAP_HUNG) for r in rig.recorder.records)


def test_a_reporting_busy_worker_is_never_reaped() -> None:
    pool = PoolConfig(name="cloud", provider="ec2", max=2, price_per_hour=0.5, hung_timeout=30)
    rig = Rig([pool], policy_for(DeadlinePolicyConfig(target_ready=60)))
    rig.fakes["cloud"].instances["i-1"] = Instance("i-1", "cloud", rig.clock.now(), worker_id="w1")
    rig.workers.add("w1", "cloud", W.BUSY, job_id="j1", provider_id="i-1")
    for _ in range(40):
        rig.workers.report("w1", W.BUSY, job_id="j1")
        rig.tick()
    assert rig.fakes["cloud"].retired == []


def test_real_scaler_local_pool_scales_while_an_asg_pool_fails_every_call(
    tmp_path: Path, moto_endpoint: str
) -> None:
    data = tmp_path / "data"
    cfg = {
        "data_dir": str(data),
        "queue": {"wait": 1, "lease": 3},
        "worker": {"spot_watch": "off", "ecs_protection": "off"},
        "media": {"rungs": [{"height": 144, "bitrate_kbps": 200}]},
        "aws": {"region": "us-east-1", "endpoint_url": moto_endpoint},
        "fleet": {
            "interval": 0.3,
            "drain_idle_after": 1,
            "policy": {"kind": "deadline", "target_ready": "4s"},
            "pools": [
                {"name": "local", "provider": "local", "max": 2, "boot_time": 2},
                {"name": "cloud", "provider": "asg", "max": 2, "price_per_hour": 0.5,
                 "options": {"asg_name": "no-such-group"}},
            ],
        },
    }
    path = tmp_path / "ebbtide.yaml"
    path.write_text(yaml.safe_dump(cfg))
    settings = load_settings(path, env={})
    services = open_services(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBBTIDE_")}
    env.update(EBBTIDE_CONFIG=str(path), AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    log = open(tmp_path / "scaler.log", "wb")  # noqa: SIM115 - closed in finally
    scaler = subprocess.Popen([sys.executable, "-m", "ebbtide.cli.main", "scaler"], env=env,
                              stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    from fleet_env import wait_for

    try:
        cat = services.catalog
        user = cat.create_user("tester")
        clips = [generate_clip(tmp_path / f"c{i}.mp4", seconds=1, width=160, height=120) for i in range(2)]
        media = [submit_file(services, c, user.id, c.stem) for c in clips]

        def done() -> bool:
            states = [cat.get_media(m.id).state for m in media]
            assert MediaState.FAILED not in states, states
            return all(s == MediaState.COMPLETE for s in states)

        wait_for(done, 120, "both clips transcoded by the local pool", step=0.3)
        wait_for(lambda: cat.list_workers(pool="local") == [], 40, "the local pool back at zero", step=0.3)
        decisions = cat.recent_decisions(limit=1000)
        local = [d for d in decisions if d.pool == "local"]
        assert any(d.launched for d in local) and any(d.retired for d in local)
        cloud = [d for d in decisions if d.pool == "cloud"]
        assert cloud and all(d.cause == Cause.PROVIDER_ERROR for d in cloud)
        assert "no-such-group" in (cloud[0].error or "")
        # status shows it
        out = subprocess.run([sys.executable, "-m", "ebbtide.cli.main", "status", "--once"],
                             env={**env, "COLUMNS": "250"},
                             capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert "provider failing" in out.stdout and "provider-error" in out.stdout
        # and so do the dashboard API and /metrics (same process state: the catalog)
        from ebbtide.fleet.snapshot import latest_decisions
        from ebbtide.web.fleet import pools_out
        from ebbtide.web.metrics import registry_for

        pools = {p.name: p for p in pools_out(services, cat.recent_decisions(200), cat.list_workers())}
        assert pools["cloud"].provider_error and pools["local"].provider_error is None
        from prometheus_client import generate_latest

        text = generate_latest(registry_for(services)).decode()
        assert 'ebbtide_pool_provider_error{pool="cloud"} 1.0' in text
        assert 'ebbtide_pool_provider_error{pool="local"} 0.0' in text
        assert latest_decisions(cat)["cloud"].error
    finally:
        scaler.send_signal(signal.SIGTERM)
        try:
            scaler.wait(15)
        except subprocess.TimeoutExpired:
            scaler.kill()
        log.close()
        leftover = LocalProvider(settings.fleet.pools[0], settings.data_path, SYSTEM_CLOCK)
        pids = [i.pid for i in leftover.inventory() if i.pid]
        leftover.stop_all()
        psutil.wait_procs([psutil.Process(p) for p in pids if psutil.pid_exists(p)], timeout=10)
        services.close()
