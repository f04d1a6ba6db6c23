"""The images' install step, run on the host into a plain venv exactly as the Dockerfiles run it.

Every Dockerfile's build stage is the same few COPY lines and one RUN of `deploy/install.sh`. This
test reads those lines from the Dockerfiles, lays out the same tree in a temp dir, runs the same
script (the host's python; pip's cache kept, the only difference), then plays the container with
what the Dockerfile says: its ENV and PATH, its ENTRYPOINT script, its HEALTHCHECK command, and its
CMD (`ebbtide worker`, with --once) taking one job on a generated clip. The web image's
HEALTHCHECK is run against `ebbtide serve` from the same install, and must fail while nothing
listens. tests/packaging installs the wheel without the pins; this is the pinned install the
images get. The images themselves are built and run by deploy/images/build.sh (podman, root, a
Debian base from mmdebstrap; not part of `make test`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ebbtide.media.samples import generate_clip

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KINDS = ("web", "worker", "worker-gpu")
pytestmark = pytest.mark.xdist_group("packaging")


# Reading a Dockerfile (only what ours use) -------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    workdir: str
    copies: tuple[tuple[tuple[str, ...], str], ...]  # (sources, destination), build-context copies
    runs: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    healthcheck: tuple[str, ...]
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]


def instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(
        r"\\\n", " ", "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    )
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@dataclass
class _Acc:
    workdir: str = "/"
    copies: list[tuple[tuple[str, ...], str]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    env: list[tuple[str, str]] = field(default_factory=list)
    healthcheck: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()

    def stage(self) -> Stage:
        return Stage(self.workdir, tuple(self.copies), tuple(self.runs), tuple(self.env), self.healthcheck,
                     self.entrypoint, self.cmd)  # fmt: skip


def stages(text: str) -> list[Stage]:
    accs: list[_Acc] = []
    for word, rest in instructions(text):
        if word == "FROM":
            accs.append(_Acc())
        elif not accs:
            continue
        elif word == "WORKDIR":
            accs[-1].workdir = rest
        elif word == "COPY" and not rest.startswith("--from"):
            *sources, dest = rest.split()
            accs[-1].copies.append((tuple(sources), dest))
        elif word == "RUN":
            accs[-1].runs.append(rest)
        elif word == "ENV":
            for kv in shlex.split(rest):
                key, _, value = kv.partition("=")
                accs[-1].env.append((key, value))
        elif word == "HEALTHCHECK":
            accs[-1].healthcheck = tuple(json.loads(rest[rest.index("CMD ") + 4 :]))
        elif word == "ENTRYPOINT":
            accs[-1].entrypoint = tuple(json.loads(rest))
        elif word == "CMD":
            accs[-1].cmd = tuple(json.loads(rest))
    return [a.stage() for a in accs]


def read(kind: str) -> list[Stage]:
    return stages((DEPLOY / f"Dockerfile.{kind}").read_text())


INSTALL = re.compile(r"^(?:PIP_NO_CACHE_DIR=1 )?sh deploy/install\.sh (?P<prefix>/\S+) \.$")


def test_the_dockerfiles_are_read_as_docker_reads_them() -> None:
    build, final = read("worker")
    assert build.workdir == "/src"
    assert build.copies == (
        (("pyproject.toml", "README.md"), "./"),
        (("src",), "./src"),
        (("deploy/constraints.txt", "deploy/install.sh"), "./deploy/"),
    )
    assert final.cmd == ("ebbtide", "worker") and final.entrypoint == ("/usr/local/bin/ebbtide-entrypoint",)
    assert final.healthcheck == ("ebbtide", "config", "check")
    assert ("PYTHONUNBUFFERED", "1") in final.env


def test_every_image_installs_with_the_one_script() -> None:
    """One install for the three images, so installing it once here covers them all."""
    builds = {kind: read(kind)[0] for kind in KINDS}
    assert len({(b.copies, b.runs) for b in builds.values()}) == 1, builds
    (run,) = builds["worker"].runs
    assert INSTALL.match(run), run


# Running them ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Installed:
    prefix: Path  # what /opt/ebbtide is in the image
    home: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def image_env(stage: Stage, inst: Installed, **extra: str) -> dict[str, str]:
    """The container's environment: the Dockerfile's ENV with the prefix moved to the temp dir."""
    match = INSTALL.match(read("worker")[0].runs[0])
    assert match
    image_prefix = match["prefix"]
    base = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("EBBTIDE_")}
    env = {**base, "HOME": str(inst.home)}
    for key, value in stage.env:
        value = value.replace("$PATH", base["PATH"]).replace(image_prefix, str(inst.prefix))
        env[key] = value
    env.update(extra)
    return env


def run(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    build = read("worker")[0]
    tree = tmp_path_factory.mktemp("image") / "src"  # the build stage's WORKDIR
    tree.mkdir()
    for sources, dest in build.copies:
        for src in sources:
            target = tree / dest / Path(src).name if dest.endswith("/") else tree / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            if (ROOT / src).is_dir():
                shutil.copytree(
                    ROOT / src, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
                )
            else:
                shutil.copy(ROOT / src, target)
    match = INSTALL.match(build.runs[0])
    assert match
    prefix = tree.parent / match["prefix"].lstrip("/")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("EBBTIDE_")}
    env["PYTHON"] = sys.executable
    done = run(["sh", "deploy/install.sh", str(prefix), "."], env, tree, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    home = tree.parent / "home"
    home.mkdir()
    yield Installed(prefix, home)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_installed_worker_answers_and_takes_one_job(installed: Installed, tmp_path: Path) -> None:
    final = read("worker")[-1]
    env = image_env(final, installed, EBBTIDE_CONFIG=str(tmp_path / "ebbtide.yaml"))
    assert not list(installed.prefix.rglob("__pycache__"))  # the script's clean-up ran
    # the pinned versions are the ones installed
    pins = dict(
        ln.split("==", 1) for ln in (DEPLOY / "constraints.txt").read_text().splitlines() if "==" in ln
    )
    versions = "import importlib.metadata as m; print(m.version('pydantic'), m.version('av'))"
    got = run(["python", "-c", versions], env, tmp_path)
    assert got.stdout.split() == [pins["pydantic"], pins["av"]], got.stderr
    for args in (["ebbtide", "--help"], ["ebbtide", "worker", "--help"]):
        r = run(args, env, tmp_path)
        assert r.returncode == 0 and "Usage" in r.stdout, r.stdout + r.stderr
    (tmp_path / "ebbtide.yaml").write_text(
        f"data_dir: {tmp_path / 'data'}\nmedia:\n  rungs: [{{height: 144, bitrate_kbps: 200}}]\n"
    )
    health = run(list(final.healthcheck), env, tmp_path)
    assert health.returncode == 0, health.stdout + health.stderr
    clip = generate_clip(tmp_path / "clip.mp4", seconds=1, width=160, height=120)
    r = run(["ebbtide", "submit", str(clip), "--no-follow"], env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    # ENTRYPOINT + CMD, as the container starts them, for one job
    entry = DEPLOY / "docker-entrypoint.sh"
    assert final.entrypoint == ("/usr/local/bin/ebbtide-entrypoint",)
    r = run(["sh", str(entry), *final.cmd, "--once"], env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    with contextlib.closing(sqlite3.connect(tmp_path / "data" / "catalog.db")) as con:
        assert [row[0] for row in con.execute("SELECT state FROM media")] == ["complete"]
    assert list((tmp_path / "data").rglob("*.m3u8"))


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_web_images_health_check_passes_only_while_the_app_serves(
    installed: Installed, tmp_path: Path
) -> None:
    final = read("web")[-1]
    port = _free_port()
    env = image_env(final, installed, EBBTIDE_WEB__HOST="127.0.0.1", EBBTIDE_WEB__PORT=str(port),
                    EBBTIDE_CONFIG=str(tmp_path / "ebbtide.yaml"))  # fmt: skip
    (tmp_path / "ebbtide.yaml").write_text(f"data_dir: {tmp_path / 'data'}\n")
    assert final.cmd == ("ebbtide", "serve")
    before = run(list(final.healthcheck), env, tmp_path, timeout=60)
    assert before.returncode != 0  # nothing listens yet: the check can fail
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(["sh", str(DEPLOY / "docker-entrypoint.sh"), *final.cmd], env=env, cwd=tmp_path,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        end = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            if run(list(final.healthcheck), env, tmp_path, timeout=60).returncode == 0:
                break
            assert time.monotonic() < end, (tmp_path / "serve.log").read_text()
            time.sleep(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    assert proc.returncode == 0, (tmp_path / "serve.log").read_text()
