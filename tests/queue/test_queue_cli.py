"""`ebbtide queue stats` and `ebbtide dlq list|redrive` on a real SQLite queue file."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ebbtide.cli.context import console
from ebbtide.cli.main import app
from ebbtide.queue.sqlite import SqliteQueue


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "width", 200)  # so table cells are not wrapped mid-word


def _setup(tmp_path: Path) -> tuple[str, SqliteQueue]:
    db = tmp_path / "q.db"
    cfg = tmp_path / "ebbtide.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\nqueue:\n  url: sqlite:///{db}\n  max_receives: 1\n")
    return str(cfg), SqliteQueue(db, max_receives=1)


def test_stats_list_and_redrive(tmp_path: Path) -> None:
    cfg, q = _setup(tmp_path)
    q.send({"job_id": "j1", "kind": "transcode"})
    q.send("garbage body")
    q.send({"job_id": "j3", "kind": "transcode"}, delay=60)
    [d] = q.receive(lease=60)
    assert d.body["job_id"] == "j1"
    assert q.receive() == []  # buries the garbage
    runner = CliRunner()

    out = runner.invoke(app, ["--config", cfg, "queue", "stats"])
    assert out.exit_code == 0, out.output
    # visible 0, in flight 1, delayed 1, dead 1 (the garbage), backlog 2
    assert "│       0 │         1 │       1 │    1 │       2 │" in out.output

    out = runner.invoke(app, ["--config", cfg, "dlq", "list"])
    assert out.exit_code == 0, out.output
    assert "not valid JSON" in out.output and "garbage body" in out.output
    [dead] = q.dead_letters()
    assert dead.message_id in out.output

    out = runner.invoke(app, ["--config", cfg, "dlq", "redrive", dead.message_id, "nope"])
    assert out.exit_code == 0, out.output
    assert "redrove 1 of 2" in out.output
    assert q.stats().dead == 0 and q.stats().visible == 1


def test_redrive_all_and_empty_list(tmp_path: Path) -> None:
    cfg, q = _setup(tmp_path)
    runner = CliRunner()
    out = runner.invoke(app, ["--config", cfg, "dlq", "list"])
    assert "no dead letters" in out.output
    q.send("x")
    q.send("[]")
    assert q.receive() == []
    out = runner.invoke(app, ["--config", cfg, "dlq", "redrive"])
    assert "redrove 2 dead letter(s)" in out.output
    assert q.stats().visible == 2
