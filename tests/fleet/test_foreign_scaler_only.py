"""`ebbtide scaler`, `status` and `up` from a config naming only a depth source and a foreign pool:
they run with the catalog as their only state (no ebbtide queue, store or web app), read the
user's queue (real BullMQ 6 on the real Redis) and launch into moto EC2 (server mode)."""

from __future__ import annotations

from pathlib import Path

import yaml
from aws_env import REGION, network, suffix
from foreign_env import producer
from typer.testing import CliRunner

from ebbtide.cli.main import app
from ebbtide.errors import ConfigError
from ebbtide.media.samples import generate_clip


def test_scaler_only_cli(moto_endpoint: str, redis_url: str, queue_name: str, tmp_path: Path) -> None:
    net = network(moto_endpoint)
    data = tmp_path / "data"
    cfg = {
        "data_dir": str(data),
        "aws": {"region": REGION, "endpoint_url": moto_endpoint},
        "fleet": {
            "depth_source": f"bullmq://127.0.0.1:6379/0/{queue_name}",
            "policy": {"kind": "step", "steps": [{"at_least": 1, "capacity": 1}]},
            "pools": [{"name": f"spot-{suffix()}", "provider": "ec2", "workers": "foreign", "max": 2,
                       "options": {"launch_template": net.template}}],
        },
    }
    path = tmp_path / "ebbtide.yaml"
    path.write_text(yaml.safe_dump(cfg))
    producer("6", redis_url, queue_name, "add", "3")
    runner = CliRunner()
    res = runner.invoke(app, ["--config", str(path), "scaler", "--once"])
    assert res.exit_code == 0, res.output
    assert "launch" in res.output
    res = runner.invoke(app, ["--config", str(path), "status", "--once"])
    assert res.exit_code == 0, res.output
    assert "booting" in res.output  # launched, its worker not connected yet
    res = runner.invoke(app, ["--config", str(path), "up", "--for", "1"])
    assert res.exit_code == 0, res.output
    assert "scaler-only" in res.output
    # the catalog is the only state kept; the user's queue is not ebbtide's to write
    assert not (data / "queue.db").exists() and not (data / "store").exists()
    clip = generate_clip(tmp_path / "c.mp4", seconds=1, width=160, height=120)
    res = runner.invoke(app, ["--config", str(path), "submit", "--no-follow", str(clip)])
    assert isinstance(res.exception, ConfigError), res.output
    assert "scaler-only" in res.exception.message
