"""docs/config.md is generated from the schema: it is current, complete, and every key is used."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ebbtide.config.reference import GENERATED_BY, all_keys, render_reference

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "ebbtide"


def test_committed_page_is_what_the_schema_renders() -> None:
    committed = (ROOT / "docs" / "config.md").read_text()
    assert committed == render_reference(), f"docs/config.md is stale; run `{GENERATED_BY}` (or make docs)"


def test_page_lists_the_keys_users_were_told_about() -> None:
    page = render_reference()
    for key in ("fleet.drain_idle_after", "media.threads", "worker.temp_dir", "fleet.pools[].max",
                "fleet.policy.target_ready", "web.oidc.jwks_url"):
        assert f"| `{key}` |" in page, key
    assert "| `queue.lease` | `2m` |" in page  # defaults come from the fields, formatted as users write them
    assert "| `store.multipart_threshold` | `64MB` |" in page


def test_every_key_has_a_one_line_description() -> None:
    missing = [k.path for k in all_keys() if not k.description.strip()]
    assert missing == [], f"add Field(description=…) to: {missing}"
    multi = [k.path for k in all_keys() if "\n" in k.description]
    assert multi == []


def test_every_key_is_read_somewhere_in_src() -> None:
    schema = {SRC / "config" / "sections.py", SRC / "config" / "reference.py"}
    text = "\n".join(p.read_text() for p in SRC.rglob("*.py") if p not in schema)
    unread = []
    for key in all_keys():
        name = key.path.rsplit(".", 1)[-1]
        if not re.search(rf"\.{name}\b|[\"']{name}[\"']|\b{name}=", text):
            unread.append(key.path)
    assert unread == [], f"declared but never read: {unread}"


def test_cli_prints_the_same_page(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "ebbtide.cli.main", "config", "reference"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == render_reference()
    assert not (tmp_path / "ebbtide-data").exists()  # documenting the schema touches no data
