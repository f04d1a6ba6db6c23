"""Starting the web app: a busy port is one clear error, never a silent half-started `up`."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ebbtide.errors import EbbtideError
from ebbtide.web.server import bind


def test_bind_reports_a_busy_port_with_a_hint() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(EbbtideError, match=f"port {port} on 127.0.0.1 is already in use") as e:
            bind("127.0.0.1", port)
        assert e.value.hint and "web.port" in e.value.hint


@pytest.mark.parametrize("command", [["serve"], ["up", "--for", "1"]])
def test_serve_and_up_exit_2_on_a_busy_port(tmp_path: Path, command: list[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        cfg = tmp_path / "ebbtide.yaml"
        cfg.write_text(f"data_dir: {tmp_path / 'data'}\nweb: {{port: {port}}}\n")
        res = subprocess.run([sys.executable, "-m", "ebbtide.cli.main", "--config", str(cfg), *command],
                             capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "already in use" in res.stderr
