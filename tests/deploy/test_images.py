"""What the images install, read from the files they are built from (they are not built here)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _name(req: str) -> str:
    return re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0].lower().replace("_", "-")


def test_every_runtime_dependency_is_pinned_for_the_images() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for line in (DEPLOY / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[_name(name)] = version
    missing = [d for d in deps if not pins.get(_name(d))]
    assert missing == [], f"add to deploy/constraints.txt: {missing}"


def test_images_are_non_root_pinned_with_a_health_check_and_the_entrypoint() -> None:
    files = sorted(DEPLOY.glob("Dockerfile.*"))
    assert [f.name for f in files] == ["Dockerfile.web", "Dockerfile.worker", "Dockerfile.worker-gpu"]
    for f in files:
        text = f.read_text()
        froms = re.findall(r"^FROM (\S+)", text, re.M)
        # one base for both stages, a build arg (deploy/images/build.sh passes a local Debian one)
        # whose default is pinned to a patch release
        assert froms and all(b == "${BASE}" for b in froms), f.name
        (base,) = re.findall(r"^ARG BASE=(\S+)", text, re.M)
        assert re.search(r":\d+\.\d+\.\d+-", base), f.name
        users = re.findall(r"^USER (\S+)", text, re.M)
        assert users and users[-1] not in ("0", "root"), f.name
        assert "HEALTHCHECK" in text and "sh deploy/install.sh /opt/ebbtide ." in text
        assert 'ENTRYPOINT ["/usr/local/bin/ebbtide-entrypoint"]' in text
    assert '-c "$tree/deploy/constraints.txt"' in (DEPLOY / "install.sh").read_text()
    assert (
        "NVIDIA_DRIVER_CAPABILITIES=compute,video,utility" in (DEPLOY / "Dockerfile.worker-gpu").read_text()
    )
