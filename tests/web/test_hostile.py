"""Hostile uploads through the real web app and the real worker (issue 10).

Bob-copies-Alice: a playlist uploaded through the signed-upload path used to make the web probe and
the worker's ffmpeg read another user's media (and the 422 text was a file-existence oracle). The
corpus: gaps of hours and days, VFR with gaps, PNG/MJPEG bombs, many streams, playlists and concat
lists pointing at local media and at 127.0.0.1, a nested-JSON message. Each is refused with a 422
by the web, and dead on its first attempt in the worker, with a sentence that names no path; the
whole process tree's peak RSS stays under the budget, and a normal upload still goes through.
"""

from __future__ import annotations

import http.server
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hostile_corpus import corpus, gap_clip, playlist
from web_helpers import Env, account, make_settings

from ebbtide.rss import peak_tree_rss, tree_rss
from ebbtide.services import open_services
from ebbtide.web.app import create_app
from ebbtide.worker import intake
from ebbtide.worker.runtime import Worker

MAX_MEMORY = 768 * 2**20
PROBE_MEMORY = 512 * 2**20
LIMITS = {"max_memory": MAX_MEMORY, "probe_memory": PROBE_MEMORY, "time_floor": 60, "probe_timeout": 30}


def _put(env: Env, url: str, data: bytes) -> int:
    return env.client.put(url.removeprefix("http://127.0.0.1:8000"), content=data).status_code


def _signed_upload(env: Env, who: Any, filename: str, data: bytes) -> Any:
    h = who.headers
    s = env.client.post(
        "/api/gallery/uploads/sign", headers=h, json={"filename": filename, "size": len(data)}
    )
    assert s.status_code == 200, s.text
    assert _put(env, s.json()["url"], data) == 200
    return env.client.post("/api/gallery/uploads/complete", headers=h, json={"key": s.json()["key"]})


def _victim(env: Env, media_id: str) -> Path:
    media = env.services.catalog.get_media(media_id)
    return Path(env.services.store.root) / media.source_key  # type: ignore[attr-defined]


_PATHLIKE = re.compile(r"(?:^|[\s'\"(:=])/[\w.-]+/[\w./-]*")


def _no_leak(text: str, *secrets: str) -> None:
    """No path, no 'No such file' (an existence oracle), none of another user's ids."""
    assert "no such file" not in text.lower(), text
    assert not _PATHLIKE.search(text), text
    for s in secrets:
        assert s not in text, text


def _alices_rendition_as_absolute_playlist(env: Env, media_id: str) -> bytes:
    """Alice's published HLS rendition, its init segment and media segments named by absolute path:
    what Bob can write knowing only ids that appear in a link Alice shares."""
    store = env.services.store
    root = Path(store.root)  # type: ignore[attr-defined]
    key = next(
        o.key
        for o in store.list(intake.hls_root(env.alice.user.id, media_id))
        if o.key.endswith("index.m3u8")
    )
    folder = (root / key).parent
    out = []
    for line in (root / key).read_text().splitlines():
        if line.startswith("#EXT-X-MAP:URI="):
            line = f'#EXT-X-MAP:URI="{folder / line.split(chr(34))[1]}"'
        elif line and not line.startswith("#"):
            line = str(folder / line)
        out.append(line)
    return ("\n".join(out) + "\n").encode()


def test_bob_cannot_copy_alices_video_with_a_playlist(env: Env, clip: Path) -> None:
    """Fails on the code before issue 10: the complete call answered 201 and queued Bob's copy."""
    alice_video = env.ready_video(env.alice, clip, "private")
    victim = _victim(env, alice_video["id"])
    assert victim.is_file()
    r = _signed_upload(
        env, env.bob, "copy.m3u8", _alices_rendition_as_absolute_playlist(env, alice_video["id"])
    )
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    _no_leak(err, alice_video["id"], env.alice.user.id)
    # the same sentence whether the named file exists or not: no existence oracle
    there = _signed_upload(
        env, env.bob, "copy.m3u8", playlist(victim.parent / "x.m3u8", str(victim)).read_bytes()
    )
    (victim.parent / "x.m3u8").unlink()
    missing = _signed_upload(env, env.bob, "copy.m3u8", f"#EXTM3U\n#EXTINF:2.0,\n{victim}.gone\n".encode())
    assert there.status_code == missing.status_code == 422
    assert there.json()["error"] == missing.json()["error"] == err
    assert env.client.get("/api/gallery/videos", headers=env.bob.headers).json() == []
    assert env.services.queue.stats().backlog == 0


class _Counter(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def _http_counter() -> Iterator[tuple[str, type[_Counter]]]:
    handler = type("Counter", (_Counter,), {"hits": 0})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", handler
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture()
def tight(data_dir: Path) -> Iterator[Env]:
    services = open_services(make_settings(data_dir, media={"preset": "ultrafast", "limits": LIMITS}))
    with TestClient(create_app(services), base_url="http://127.0.0.1:8000") as client:
        yield Env(
            services,
            client,
            account(services, "alice"),
            account(services, "bob"),
            account(services, "root", True),
        )
    services.close()


def _work_one(env: Env) -> None:
    Worker(env.services, pool="local", once=True, idle_exit=3, install_signals=False).run()


def test_hostile_corpus_web_422_worker_dead_at_once_memory_bounded(
    tight: Env, clip: Path, tmp_path: Path
) -> None:
    env = tight
    alice_video = env.ready_video(env.alice, clip, "private")
    victim = _victim(env, alice_video["id"])
    base = tree_rss(os.getpid())
    with _http_counter() as (url, counter), peak_tree_rss() as peak:
        items = corpus(victim, url)
        for name, (upload_name, make) in items.items():
            f = make(tmp_path)
            started = time.monotonic()
            # the web: refused before anything is queued
            r = env.upload(env.bob, f, name=upload_name)
            assert r.status_code == 422, (name, r.status_code, r.text)
            _no_leak(r.json()["error"], alice_video["id"], env.alice.user.id)
            assert env.services.queue.stats().backlog == 0, name
            # the worker, as if the web had let it through: dead on the first attempt
            mid = intake.new_id()
            key = intake.source_key(env.bob.user.id, mid, upload_name)
            env.services.store.put_file(key, f)
            media = intake.submit_uploaded(env.services, env.bob.user.id, key, name, f.stat().st_size)
            _work_one(env)
            job = env.services.catalog.list_jobs(media_id=media.id)[0]
            assert str(job.state) == "dead" and job.attempts == 1, (name, job)
            _no_leak(job.error or "", alice_video["id"], env.alice.user.id)
            assert job.error, name
            assert time.monotonic() - started < 60, name
        # a message no worker can parse: dead-lettered, and the next job still flows
        env.services.queue.send('{"job_id":' * 5000 + "1" + "}" * 5000)
        vfr = gap_clip(tmp_path / "ok-vfr.mp4", 3, size="160x120", frames=30, jitter=True)
        ok = env.upload(env.bob, vfr, name="ok.mp4")
        assert ok.status_code == 201, ok.text
        _work_one(env)
        _work_one(env)
        v = env.client.get(f"/api/gallery/videos/{ok.json()['id']}", headers=env.bob.headers).json()
        assert v["state"] == "complete", v
        assert any("nests deeper" in d.reason for d in env.services.queue.dead_letters())
    assert counter.hits == 0
    budget = base + MAX_MEMORY
    print(
        f"\npeak RSS of the process tree: {peak[0] / 2**20:.0f} MB (baseline {base / 2**20:.0f} MB, "
        f"budget {budget / 2**20:.0f} MB)"
    )
    assert peak[0] < budget


def test_probes_are_limited_in_number_503_beyond(data_dir: Path, clip: Path) -> None:
    """With every probe slot taken, an upload gets 503 + Retry-After at once instead of a new child."""
    from ebbtide.web import probe_proc

    services = open_services(make_settings(data_dir, media={"limits": {"web_probes": 1}}))
    with TestClient(create_app(services), base_url="http://127.0.0.1:8000") as client:
        env = Env(
            services,
            client,
            account(services, "alice"),
            account(services, "bob"),
            account(services, "r", True),
        )
        slot = probe_proc._slot(1)
        assert slot.acquire(timeout=1)  # another upload's probe is running
        try:
            r = env.upload(env.alice, clip)
            assert r.status_code == 503 and r.headers["retry-after"] == str(probe_proc.RETRY_AFTER), r.text
            assert "try again" in (r.json()["hint"] or "")
        finally:
            slot.release()
        assert env.upload(env.alice, clip).status_code == 201
    services.close()
