"""`ebbtide probe` and `ebbtide transcode` through the real entry point (a subprocess, as users run it)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ClipFactory = Callable[..., Path]


def ebbtide(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "EBBTIDE_DATA_DIR": str(cwd / "data")}
    return subprocess.run(
        [sys.executable, "-m", "ebbtide.cli.main", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=120, check=False,
    )  # fmt: skip


def test_probe_and_transcode(clip: ClipFactory, tmp_path: Path) -> None:
    src = clip("cli_src", seconds=2, width=640, height=360)
    p = ebbtide("probe", str(src), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "640x360" in p.stdout and "360p" in p.stdout and "aac" in p.stdout
    t = ebbtide("transcode", str(src), str(tmp_path / "out"), cwd=tmp_path)
    assert t.returncode == 0, t.stderr
    assert "done" in t.stdout and "360p/index.m3u8" in t.stdout
    assert (tmp_path / "out" / "master.m3u8").is_file() and (tmp_path / "out" / "thumbnail.jpg").is_file()


def test_bad_input_is_one_line_plus_hint(tmp_path: Path) -> None:
    bad = tmp_path / "empty.mp4"
    bad.write_bytes(b"")
    r = ebbtide("probe", str(bad), cwd=tmp_path)
    assert r.returncode == 2
    assert "error:" in r.stderr and "empty (0 bytes)" in r.stderr and "hint:" in r.stderr
    assert "Traceback" not in r.stderr
