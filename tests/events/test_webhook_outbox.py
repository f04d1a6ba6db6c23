"""The webhook outbox survives a sender killed mid-delivery: nothing lost, nothing out of order.

Real parts: a SQLite catalog file, `ebbtide events` as a subprocess (killed with SIGKILL while a
delivery is in flight), a real HTTP receiver on 127.0.0.1 that checks every HMAC signature.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ebbtide.catalog.states import JobState
from ebbtide.config import load_settings
from ebbtide.events.outbox import ProgressThrottle, media_steps
from ebbtide.events.sender import pick, retry_delay, verify
from ebbtide.services import open_services

SECRET = "whsec-test-1234"


class Recorder:
    """Accepts events; fails the first one with 500 (a retry) and holds the 6th open (the kill)."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.requests = 0
        self.holding = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with rec.lock:
                    rec.requests += 1
                    n = rec.requests
                    if not verify(SECRET, self.headers.get("X-Ebbtide-Signature", ""), body, time.time()):
                        rec.bad_signatures += 1
                if n == 1:
                    self.send_response(500)
                    self.end_headers()
                    return
                if n == 6:
                    rec.holding.set()
                    rec.release.wait(30)
                    return  # the sender is dead by now: nothing is acknowledged
                with rec.lock:
                    rec.got.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def _sender(cfg: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    args = [sys.executable, "-m", "ebbtide.cli.main", "--config", str(cfg), "events", "--interval", "0.1"]
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.timeout(900)  # two sender start-ups and a delivery backlog on a loaded machine
def test_kill_mid_delivery_loses_nothing_and_keeps_order(tmp_path: Path) -> None:
    rec = Recorder()
    cfg = tmp_path / "ebbtide.yaml"
    cfg.write_text(json.dumps({"data_dir": str(tmp_path / "data"), "events": {
        "webhook_urls": [rec.url], "secret": SECRET, "backoff_base": 0.2, "backoff_max": 1}}))  # fmt: skip
    services = open_services(load_settings(cfg, env={}))
    cat = services.catalog
    user = cat.create_user("coach")
    for i in range(3):  # three media through their lifecycle: 5 job + 6 media events each (with uploaded)
        root = f"users/{user.id}/media/m{i}/"
        m = cat.create_media(user.id, f"clip {i}", f"{root}source/a.mp4", 10, media_id=f"m{i}")
        job = cat.create_job("transcode", {"source_key": m.source_key}, owner_id=user.id, media_id=m.id)
        att = cat.start_attempt(job.id, "w1", 1)
        assert att is not None
        cat.finish_attempt(job.id, att.id, JobState.QUEUED, error="spot reclaimed")
        att = cat.start_attempt(job.id, "w1", 2)
        assert att is not None
        prefix = f"{root}hls/{att.id}/"
        assert cat.publish_media(m.id, job.id, att.id, prefix, prefix + "master.m3u8", [], None, None)
    from sqlalchemy import select

    from ebbtide.catalog.models import EventRow

    with cat._reader() as s:  # type: ignore[attr-defined]
        outbox = [(r.event_id, r.media_id, r.type) for r in s.scalars(select(EventRow).order_by(EventRow.id))]
    assert [t for _, mid, t in outbox if mid == "m0"] == [
        "media.uploaded", "job.queued", "media.queued", "job.running", "media.transcoding",
        "job.queued", "media.queued", "job.running", "media.transcoding",
        "job.succeeded", "media.transcoded", "media.complete",
    ]  # fmt: skip

    first = _sender(cfg)
    if not rec.holding.wait(180):  # generous: a start-up alone can take half a minute under load
        first.kill()  # before reading: a live process never closes its stderr
        raise AssertionError(first.communicate(timeout=10)[1].decode(errors="replace")[-2000:])
    first.send_signal(signal.SIGKILL)  # mid-delivery: the 6th request is open, unanswered
    first.wait(10)
    rec.release.set()
    second = _sender(cfg)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with cat._reader() as s:  # type: ignore[attr-defined]
                left = list(s.scalars(select(EventRow.id).where(EventRow.delivered_at.is_(None))))
            if not left:
                break
            time.sleep(0.2)
        assert not left, f"{len(left)} events never delivered"
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(10)
    assert rec.bad_signatures == 0
    firsts: dict[str, dict[str, Any]] = {}
    for e in rec.got:
        firsts.setdefault(e["id"], e)
    assert set(firsts) == {eid for eid, _, _ in outbox}  # none lost
    order = {eid: n for n, (eid, _, _) in enumerate(outbox)}
    for media in ("m0", "m1", "m2"):
        seen = [order[eid] for eid, e in firsts.items() if e["media_id"] == media]
        assert seen == sorted(seen), f"{media} out of order"  # dict keeps first-arrival order
    assert len(rec.got) >= len(outbox)  # the in-flight one (and the 500) were sent again
    services.close()


def test_pure_parts() -> None:
    assert [retry_delay(n, 1, 10) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 10]
    throttle = ProgressThrottle(5)
    assert [throttle.due("a", t) for t in (0, 1, 4.9, 5, 6)] == [True, False, False, True, False]
    assert throttle.due("b", 1)  # per media
    assert media_steps("transcoding", "complete") == ["transcoded", "complete"]
    assert media_steps("transcoded", "complete") == ["complete"]
    assert media_steps(None, "uploaded") == ["uploaded"]

    class R:
        def __init__(self, id: int, media: str, due: float) -> None:
            self.id, self.media_id, self.job_id, self.event_id, self.next_at = id, media, None, str(id), due

    rows = [R(1, "a", 5), R(2, "a", 0), R(3, "b", 0), R(4, "b", 0)]
    assert [r.id for r in pick(rows, now=1)] == [3]  # a's oldest is not due; it holds a's later one
