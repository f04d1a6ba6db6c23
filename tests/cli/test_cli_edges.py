"""The CLI as a newcomer meets it: each rough edge of issue 16, by its exact message or behaviour.

Real embedded installs in tmp_path; subprocesses where the behaviour is the entry point's own
(argument order, output to a pipe).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from ebbtide.catalog.records import WorkerRecord
from ebbtide.catalog.states import WorkerState
from ebbtide.cli.argv import hoist_config
from ebbtide.cli.fleet_cmd import render
from ebbtide.cli.main import app
from ebbtide.config import load_settings
from ebbtide.errors import ConfigError, EbbtideError, NotFound
from ebbtide.fleet.liveness import nobody_working
from ebbtide.fleet.snapshot import Snapshot
from ebbtide.media.samples import generate_clip
from ebbtide.queue.base import QueueStats
from ebbtide.services import open_services


def _config(tmp_path: Path, **extra: object) -> Path:
    cfg = {
        "data_dir": str(tmp_path / "data"),
        "queue": {"wait": 1},
        "fleet": {"interval": 0.5, "pools": [{"name": "local", "provider": "local", "max": 0}]},
        **extra,
    }
    path = tmp_path / "ebbtide.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(*args: str, cwd: Path, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("EBBTIDE_")}
    return subprocess.run([sys.executable, "-m", "ebbtide.cli.main", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env={**base, **env})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --config after the subcommand -------------------------------------------------------------------
def test_hoist_config_moves_it_in_front_of_the_subcommand() -> None:
    assert hoist_config(["config", "check", "--config", "x"]) == ["--config", "x", "config", "check"]
    assert hoist_config(["status", "--once", "-c", "x"]) == ["-c", "x", "status", "--once"]
    assert hoist_config(["queue", "stats", "--config=x"]) == ["--config=x", "queue", "stats"]
    assert hoist_config(["--config", "x", "status"]) == ["--config", "x", "status"]
    assert hoist_config(["submit", "--", "--config"]) == ["submit", "--", "--config"]


def test_config_is_accepted_after_the_subcommand(tmp_path: Path) -> None:
    path = _config(tmp_path)
    out = _run("config", "check", "--config", str(path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"catalog sqlite:///{tmp_path / 'data' / 'catalog.db'}" in out.stdout


# up --host/--port -----------------------------------------------------------------------------------
def test_up_takes_port_and_the_busy_port_hint_names_it(tmp_path: Path) -> None:
    path = _config(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = _run("up", "--host", "127.0.0.1", "--port", str(port), "--config", str(path), cwd=tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"error: port {port} on 127.0.0.1 is already in use" in out.stderr
    assert "--port" in out.stderr and "No such option" not in out.stderr
    free = _free_port()
    out = _run("up", "--port", str(free), "--for", "1", "--config", str(path), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"web app: http://127.0.0.1:{free}" in out.stdout
    # not a terminal: the log keeps whole lines instead of wrapping at 80 columns
    first = next(line for line in out.stdout.splitlines() if line.startswith("ebbtide up data in"))
    assert first.endswith("policy deadline") and len(first) > 80, first


# submit ----------------------------------------------------------------------------------------------
def test_submit_refuses_an_unknown_owner_and_creates_nothing(tmp_path: Path) -> None:
    path = _config(tmp_path)
    clip = generate_clip(tmp_path / "c.mp4", seconds=1, width=160, height=120)
    res = CliRunner().invoke(app, ["--config", str(path), "submit", "--owner", "nobody", str(clip)])
    assert isinstance(res.exception, NotFound), res.output
    assert res.exception.message == "no user 'nobody'"
    assert res.exception.hint is not None and "ebbtide users add nobody" in res.exception.hint
    services = open_services(load_settings(path, env={}))
    try:
        assert services.catalog.find_user("nobody") is None
        assert services.catalog.list_media() == []
    finally:
        services.close()


def test_submit_with_nothing_running_says_so_and_what_to_run(tmp_path: Path) -> None:
    path = _config(tmp_path)
    clip = generate_clip(tmp_path / "c.mp4", seconds=1, width=160, height=120)
    res = CliRunner().invoke(app, ["--config", str(path), "submit", "--timeout", "7", str(clip)])
    assert res.exit_code == 1, res.output
    assert "queued c as video " in res.output
    assert "nothing is picking these up: no worker is running and no scaler has acted" in res.output
    assert "hint: run `ebbtide up` in another terminal" in res.output


def test_nobody_working_decision() -> None:
    # within the grace period: say nothing yet
    assert not nobody_working(now=103, since=100, worker_last_seen=[], decision_times=[], interval=1)
    assert nobody_working(now=110, since=100, worker_last_seen=[], decision_times=[], interval=1)
    # a scaler acted after the submission, or a worker heartbeat recently
    assert not nobody_working(now=110, since=100, worker_last_seen=[], decision_times=[101], interval=1)
    assert not nobody_working(now=110, since=100, worker_last_seen=[108], decision_times=[], interval=1)
    # an old decision and a long-silent worker do not count
    assert nobody_working(now=200, since=100, worker_last_seen=[20], decision_times=[99], interval=5)


# config errors ---------------------------------------------------------------------------------------
def test_a_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env={"EBBTIDE_QUEUE__LEASE": "soon"}, overrides={"data_dir": str(tmp_path)})
    assert err.value.message == (
        "bad config in the environment: queue.lease (from $EBBTIDE_QUEUE__LEASE): "
        "'soon' is not a duration; use a number of seconds or 90s, 10m, 2h, 1d"
    )


def test_a_yaml_error_names_the_file_and_line_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "ebbtide.yaml"
    path.write_text("queue:\n  url: sqs://a: b\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    assert err.value.message == (
        f"{path} is not valid YAML at line 2, column 15: mapping values are not allowed here"
    )
    assert "<unicode string>" not in err.value.message
    assert err.value.hint is not None and "indentation" in err.value.hint


# media commands -------------------------------------------------------------------------------------
def test_probe_of_a_non_video_has_no_raw_errno(tmp_path: Path) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_text("hello, not a video\n")
    out = _run("probe", str(bad), cwd=tmp_path)
    assert out.returncode == 2
    # refused by the container allowlist before any demuxer runs (issue 10)
    assert out.stderr.splitlines()[0] == "error: notes.mp4 is not a video file in a container ebbtide accepts"
    assert "Errno" not in out.stderr


def test_transcode_of_a_missing_file_prints_no_progress_bar(tmp_path: Path) -> None:
    out = _run("transcode", str(tmp_path / "missing.mp4"), str(tmp_path / "out"), cwd=tmp_path)
    assert out.returncode == 2
    assert out.stdout == ""  # no 0 % bar
    assert f"error: {tmp_path / 'missing.mp4'} does not exist or is not a file" in out.stderr


# status names videos the way submit does ---------------------------------------------------------
def test_status_shows_the_video_id_a_worker_is_on() -> None:
    worker = WorkerRecord(id="w-1", pool="local", state=WorkerState.BUSY, started_at=0, last_seen=9,
                          job_id="job-123", progress=0.5)
    snap = Snapshot(at=10, queue=QueueStats(visible=0, in_flight=1, delayed=0, dead=0), pools=(),
                    workers=(worker,), videos={"job-123": "vid-456"})
    console = Console(width=200, record=True)
    console.print(render(snap))
    text = console.export_text()
    assert "vid-456" in text and "job-123" not in text and "video" in text


# output to a pipe is not wrapped at 80 columns -----------------------------------------------------
def test_output_to_a_pipe_keeps_whole_lines(tmp_path: Path) -> None:
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "data"
    path = _config(tmp_path, data_dir=str(deep))
    out = _run("--config", str(path), "config", "check", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 1 and len(lines[0]) > 200, out.stdout


# read-only commands leave nothing behind ----------------------------------------------------------
def test_read_only_commands_create_no_data_dir(tmp_path: Path) -> None:
    clip = generate_clip(tmp_path / "c.mp4", seconds=1, width=160, height=120)
    for args in (["config", "check"], ["config", "show"], ["doctor"], ["probe", str(clip)], ["--help"]):
        out = _run(*args, cwd=tmp_path)
        assert out.returncode in (0, 1), (args, out.stderr)
        assert not (tmp_path / "ebbtide-data").exists(), args
    out = _run("status", "--once", cwd=tmp_path)  # opening the services does create it
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "ebbtide-data" / "secret.key").is_file()


# help texts -----------------------------------------------------------------------------------------
def test_doctor_help_says_what_it_checks_and_its_exit_codes() -> None:
    res = CliRunner().invoke(app, ["doctor", "--help"], terminal_width=200)
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    assert "Exit 0 when all is well or only warnings remain, 1 when any finding is an error" in text
    assert "lease" in text and "scale-in" in text


def test_sim_help_explains_every_setup_and_scenario() -> None:
    from ebbtide.sim.scenarios import SCENARIOS
    from ebbtide.sim.setups import SETUPS

    res = CliRunner().invoke(app, ["sim", "--help"], terminal_width=400)
    assert res.exit_code == 0
    text = " ".join(res.output.replace("│", " ").split())
    for s in [*SETUPS.values(), *SCENARIOS.values()]:
        assert f"{s.name}: {' '.join(s.note.split())}" in text, s.name


def test_errors_exit_2_with_a_hint_line(tmp_path: Path) -> None:
    assert issubclass(NotFound, EbbtideError)
    out = _run("submit", "--owner", "nobody", str(tmp_path / "c.mp4"), cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.splitlines()[0].startswith("error: no such file:")
    assert out.stderr.splitlines()[1].startswith("hint: ")
