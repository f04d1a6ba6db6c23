"""One contract for every `Provider` the controller drives, the simulator's included (issue 15):
so the simulated provider cannot drift from the real ones.

Run on: the simulator's `SimProvider` (its engine), `LocalProvider` (real worker processes) and
`Ec2Provider` (moto in server mode, over HTTP).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from aws_env import network, pool, settings_for
from fleet_env import write_config

from ebbtide.clock import SYSTEM_CLOCK, VirtualClock
from ebbtide.fleet.providers import Provider, provider_for
from ebbtide.fleet.providers.local import LocalProvider
from ebbtide.sim.ebbtide_scaler import SimProvider
from ebbtide.sim.engine import Engine
from ebbtide.sim.fleets import SEED_000
from ebbtide.sim.setups import SETUPS

Make = Callable[[], Provider]


@pytest.fixture(params=["sim", "local", "ec2"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Make]:
    if request.param == "sim":
        engine = Engine([], SEED_000, SETUPS["ebbtide"])
        yield lambda: SimProvider(engine, SEED_000.pool("gpu-spot"))
    elif request.param == "local":
        _, settings = write_config(tmp_path)
        made: list[LocalProvider] = []

        def local() -> Provider:
            p = LocalProvider(settings.fleet.pools[0], settings.data_path, SYSTEM_CLOCK,
                              env={"PATH": "/usr/bin:/bin", "EBBTIDE_CONFIG": str(tmp_path / "ebbtide.yaml")})
            made.append(p)
            return p

        yield local
        for p in made:
            pids = [i.pid for i in p.inventory() if i.pid]
            p.stop_all(timeout=15)
            psutil.wait_procs([psutil.Process(x) for x in pids if psutil.pid_exists(x)], timeout=10)
    else:
        endpoint = request.getfixturevalue("moto_endpoint")
        net = network(endpoint)
        cfg = pool(f"c-{tmp_path.name[-8:].lower().replace('_', '-')}", "ec2", launch_template=net.template,
                   subnets=list(net.subnets), instance_type="t3.small")
        settings = settings_for(endpoint)
        yield lambda: provider_for(cfg, settings, VirtualClock())


def test_launch_inventory_retire_contract(make: Make) -> None:
    p = make()
    assert isinstance(p, Provider)
    res = p.launch(2)
    assert res.requested == 2 and 0 < res.launched <= 2
    assert (res.error is None) == (res.launched == 2)
    ids = {i.id for i in res.instances}
    assert all(i.pool == p.pool for i in res.instances)
    listed = {i.id for i in p.inventory()}
    assert ids <= listed  # what it launched it lists
    assert {i.id for i in make().inventory()} >= ids  # and a new instance of it (a restart) finds them
    first = sorted(ids)[0]
    assert p.retire([first]) == [first]
    assert first not in {i.id for i in p.inventory()}  # retired ones leave the inventory
    assert p.retire(["no-such-instance"]) == []  # unknown ids are not reported as stopped
    rest = sorted(ids - {first})
    assert sorted(p.retire(rest)) == rest
    assert not ids & {i.id for i in p.inventory()}
