"""The local provider with real `ebbtide worker` processes: launch, adopt after restart, retire."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
from fleet_env import wait_for, write_config

from ebbtide.catalog.states import WorkerState
from ebbtide.clock import SYSTEM_CLOCK
from ebbtide.fleet.providers.local import LocalProvider
from ebbtide.services import open_services


def test_local_workers_launch_report_get_adopted_and_retire(tmp_path: Path) -> None:
    path, settings = write_config(tmp_path)
    services = open_services(settings)
    pool = settings.fleet.pools[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBBTIDE_")}
    provider = LocalProvider(pool, settings.data_path, SYSTEM_CLOCK, config_path=str(path), env=env)
    try:
        res = provider.launch(2)
        assert res.launched == 2 and res.error is None
        ids = {i.worker_id for i in res.instances}
        # the processes report under the ids the provider gave them, with their pool
        wait_for(lambda: {w.id for w in services.catalog.list_workers(pool="local")
                          if w.state == WorkerState.IDLE} == ids, 30, "both workers idle")
        # a restarted controller's provider finds the same processes from the pid files
        again = LocalProvider(pool, settings.data_path, SYSTEM_CLOCK, config_path=str(path), env=env)
        found = again.inventory()
        assert {i.worker_id for i in found} == ids
        assert all(psutil.pid_exists(i.pid or -1) for i in found)
        # retire one by SIGTERM: it leaves the inventory at once and its process exits
        victim = sorted(ids)[0]
        vpid = next(i.pid for i in found if i.id == victim)
        assert again.retire([victim]) == [victim]
        assert {i.id for i in again.inventory()} == ids - {victim}
        wait_for(lambda: not provider.inventory() or victim not in {i.id for i in provider.inventory()}, 5,
                 "inventory without the victim")
        wait_for(lambda: _gone(vpid), 15, "the retired process to exit")
        wait_for(lambda: services.catalog.get_worker(victim).state == WorkerState.GONE,  # type: ignore[union-attr]
                 10, "the retired worker recorded gone")
        # the other one exits on its own when asked to drain
        other = (ids - {victim}).pop()
        services.catalog.set_drain(other, True)
        wait_for(lambda: provider.inventory() == [], 20, "the drained worker to exit")
    finally:
        provider.stop_all(timeout=10)
        services.close()


def _gone(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
