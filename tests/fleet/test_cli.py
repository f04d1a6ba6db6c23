"""`ebbtide status`, `submit` and `scaler` against a real embedded install in tmp_path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fleet_env import write_config
from typer.testing import CliRunner

from ebbtide.catalog.states import JobState
from ebbtide.cli.main import app
from ebbtide.errors import EbbtideError
from ebbtide.media.samples import generate_clip
from ebbtide.services import open_services


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    path, _ = write_config(tmp_path, pools=[{"name": "local", "provider": "local", "max": 0}])
    return path


def test_status_once_shows_queue_pools_and_workers(config: Path) -> None:
    res = CliRunner().invoke(app, ["--config", str(config), "status", "--once"])
    assert res.exit_code == 0, res.output
    for word in ("queue", "visible", "pools", "local", "workers", "(none)"):
        assert word in res.output


def test_submit_queues_and_scaler_once_records_a_decision(config: Path, tmp_path: Path) -> None:
    clip = generate_clip(tmp_path / "c.mp4", seconds=1, width=160, height=120)
    runner = CliRunner()
    res = runner.invoke(app, ["--config", str(config), "users", "add", "tester"])
    assert res.exit_code == 0, res.output
    args = ["--config", str(config), "submit", "--no-follow", "--owner", "tester", str(clip)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "queued" in res.output
    res = runner.invoke(app, ["--config", str(config), "scaler", "--once"])
    assert res.exit_code == 0, res.output
    assert "local desired 0" in res.output  # max 0: nothing may start
    _, settings = write_config(tmp_path, pools=[{"name": "local", "provider": "local", "max": 0}])
    services = open_services(settings)
    try:
        assert [j.state for j in services.catalog.list_jobs()] == [JobState.QUEUED]
        assert services.catalog.recent_decisions()[0].pool == "local"
        res = runner.invoke(app, ["--config", str(config), "status", "--once"])
        # the queue row: 1 visible, 0 in flight
        assert re.search(r"\s1\s+[│|]\s+0\s+[│|]", res.output), res.output
    finally:
        services.close()


def test_submit_of_a_missing_file_is_a_clear_error(config: Path) -> None:
    res = CliRunner().invoke(app, ["--config", str(config), "submit", "/nonexistent/video.mp4"])
    assert isinstance(res.exception, EbbtideError)
    assert "no such file" in res.exception.message and res.exception.hint
