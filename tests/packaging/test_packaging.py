"""A plain `pip install ebbtide` (no extras) must run the app.

Two checks. The fast one reads every import in src/ and requires each third-party module to come
from a distribution listed in `[project] dependencies` (an extra does not count: `pip install ebbtide`
does not bring it). The slow one builds the wheel once, installs it without extras into a fresh venv
(pip's cache and the local wheel dirs make that mostly a copy), imports every module there and runs
`ebbtide up --demo` until /health answers and the demo clip is transcoded.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.metadata as md
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "ebbtide"

pytestmark = pytest.mark.xdist_group("packaging")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_norm(re.split(r"[\s\[<>=!~;]", d, maxsplit=1)[0]) for d in project["dependencies"]}


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> files importing it, for every absolute import outside the stdlib."""
    found: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top != "ebbtide" and top not in sys.stdlib_module_names and top != "__future__":
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_runtime_import_comes_from_a_declared_dependency() -> None:
    owners = md.packages_distributions()
    declared = _declared()
    imports = _third_party_imports()
    assert "pydantic" in imports and "yaml" in imports  # the scan sees real imports
    undeclared = {
        top: sorted(files)
        for top, files in imports.items()
        if not {_norm(d) for d in owners.get(top, [top])} & declared
    }
    assert undeclared == {}, (
        f"imported by src/ but not in [project] dependencies (only an extra or nothing brings them): "
        f"{undeclared}"
    )


# The fresh-venv smoke check ---------------------------------------------------------------------
_IMPORT_ALL = """
import importlib, json, pkgutil, ebbtide
bad = {}
for m in pkgutil.walk_packages(ebbtide.__path__, "ebbtide."):
    if m.name.startswith("ebbtide.catalog.migrations"):
        continue  # alembic loads these itself, inside a migration context
    try:
        importlib.import_module(m.name)
    except ImportError as e:
        bad[m.name] = f"{type(e).__name__}: {e}"
print(json.dumps(bad))
"""


def _clean_env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH (the installed wheel must be what runs) and no EBBTIDE_* from the caller."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("EBBTIDE_")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def plain_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """(venv, wheel build log): the wheel built once from a copy of the tree, installed without extras."""
    base = tmp_path_factory.mktemp("plain")
    tree = base / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    built = subprocess.run([*pip, "wheel", "--no-deps", "-w", str(base / "wheels"), str(tree)],
                           capture_output=True, text=True, timeout=300, env=_clean_env())
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next((base / "wheels").glob("ebbtide-*.whl"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [*pip, "--python", str(venv / "bin" / "python"), "install", "-q", "--no-compile", str(wheel)],
        capture_output=True, text=True, timeout=480, env=_clean_env(),
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    yield venv, built.stdout + built.stderr


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_wheel_builds_without_deprecation_warnings(plain_venv: tuple[Path, str]) -> None:
    _, log = plain_venv
    assert "Deprecat" not in log and "deprecat" not in log, log


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_plain_install_imports_every_module(plain_venv: tuple[Path, str], tmp_path: Path) -> None:
    venv, _ = plain_venv
    out = subprocess.run([str(venv / "bin" / "python"), "-c", _IMPORT_ALL], capture_output=True,
                         text=True, timeout=300, cwd=tmp_path, env=_clean_env())
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_plain_install_runs_up_demo(plain_venv: tuple[Path, str], tmp_path: Path) -> None:
    venv, _ = plain_venv
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = tmp_path / "up.log"
    env = _clean_env(EBBTIDE_WEB__PORT=str(port), EBBTIDE_FLEET__INTERVAL="1s")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(venv / "bin" / "ebbtide"), "up", "--demo"], cwd=tmp_path, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        health = _wait(lambda: _get(base + "/health"), 90, proc, log_path)
        assert health.json()["status"] == "ok", health.text
        assert _get(base + "/login") is not None
        for asset in ("/static/app.css", "/static/vendor/hls.min.js", "/favicon.ico"):  # package data
            assert _get(base + asset) is not None, asset
        ready = _wait(lambda: _demo_ready(tmp_path), 180, proc, log_path)
        assert ready
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = None
    text = log_path.read_text()
    assert code == 0, text
    assert "Traceback" not in text and "ModuleNotFoundError" not in text, text


def _get(url: str) -> httpx.Response | None:
    try:
        r = httpx.get(url, timeout=3)
    except httpx.HTTPError:
        return None
    return r if r.status_code == 200 else None


def _demo_ready(cwd: Path) -> bool:
    """The demo clip is complete: probe, ffmpeg, store and catalog all ran from the plain install."""
    db = cwd / "ebbtide-data" / "catalog.db"
    if not db.exists():
        return False
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as con:
        try:
            states = [row[0] for row in con.execute("SELECT state FROM media")]
        except sqlite3.OperationalError:  # tables not created yet
            return False
    assert "failed" not in states, states
    return states == ["complete"]


def _wait(check, timeout: float, proc: subprocess.Popen[bytes], log: Path):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"`ebbtide up --demo` exited {proc.returncode}:\n{log.read_text()}")
        value = check()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:g}s; `ebbtide up --demo` said:\n{log.read_text()}")
