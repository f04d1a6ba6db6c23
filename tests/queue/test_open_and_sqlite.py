"""`open_queue` URL handling, and SQLite-only behaviour: injected clock, cross-process wake-up."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ebbtide.clock import VirtualClock
from ebbtide.config.sections import QueueConfig
from ebbtide.errors import ConfigError, EbbtideError
from ebbtide.queue import open_queue, sqlite_path
from ebbtide.queue.sqlite import SqliteQueue


def test_sqlite_url_forms() -> None:
    assert sqlite_path("sqlite:///rel/q.db") == "rel/q.db"
    assert sqlite_path("sqlite:////abs/q.db") == "/abs/q.db"
    for bad in ("sqlite://", "sqlite:///", "sqlite:///:memory:"):
        with pytest.raises(ConfigError):
            sqlite_path(bad)


def test_open_sqlite_creates_the_folder(tmp_path: Path) -> None:
    q = open_queue(QueueConfig(url=f"sqlite:///{tmp_path}/deep/er/q.db", max_receives=3))
    assert isinstance(q, SqliteQueue) and q.max_receives == 3
    assert (tmp_path / "deep/er/q.db").exists()
    q.close()


def test_unknown_scheme_lists_the_allowed_ones() -> None:
    cfg = QueueConfig.model_construct(url="amqp://broker/jobs", name="jobs", max_receives=5)
    with pytest.raises(ConfigError) as e:
        open_queue(cfg)
    assert "amqp://broker/jobs" in e.value.message
    assert e.value.hint is not None and "sqlite://" in e.value.hint and "sqs://" in e.value.hint


def test_leases_follow_the_injected_clock(tmp_path: Path) -> None:
    clock = VirtualClock()
    q = SqliteQueue(tmp_path / "q.db", clock=clock)
    q.send({"job_id": "j", "kind": "k"})
    [d] = q.receive(lease=600)
    clock.advance(599)
    assert q.receive() == []
    assert q.extend(d, lease=600)
    clock.advance(599)
    assert q.receive() == []
    clock.advance(2)
    [again] = q.receive(lease=600)
    assert again.receive_count == 2 and again.leased_until == clock.now() + 600
    # a frozen virtual clock cannot make a long poll hang: the real-time bound ends it
    start = time.monotonic()
    assert q.receive(wait=0.3) == []
    assert time.monotonic() - start < 2


def test_long_poll_wakes_on_a_send_from_another_process(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    q = SqliteQueue(path)
    code = (
        "import time; from ebbtide.queue.sqlite import SqliteQueue;"
        f"q = SqliteQueue({str(path)!r}); time.sleep(0.3); q.send({{'job_id': 'x', 'kind': 'k'}})"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        start = time.monotonic()
        got = q.receive(wait=15, lease=30)
        elapsed = time.monotonic() - start
    finally:
        proc.wait(30)
    assert [d.body["job_id"] for d in got] == ["x"]
    assert elapsed < 8  # far inside the 15 s wait: the poller saw the other process's commit
    assert proc.returncode == 0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("scheme", ["redis", "postgresql"])
def test_unreachable_server_is_a_clear_error_without_the_password(scheme: str) -> None:
    url = f"{scheme}://user:hunter2@127.0.0.1:{_closed_port()}/0"
    with pytest.raises(EbbtideError) as e:
        open_queue(QueueConfig(url=url))
    assert "cannot reach" in e.value.message and e.value.hint
    assert "hunter2" not in str(e.value)
