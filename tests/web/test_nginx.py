"""`ebbtide serve` with several processes, and behind the real nginx (Debian's) with the
X-Accel-Redirect hand-off: the app checks, nginx sends, the bytes are the store's, and hls.js in
Chromium plays and switches through it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import m3u8
import psutil
import pytest
from web_helpers import EBBTIDE, LiveServer, free_port, wait_js

from ebbtide.web.nginx import nginx_conf

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web-live")]
PREFIX = "/_ebbtide_files/"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def start_nginx(root: Path, conf_text: str) -> tuple[subprocess.Popen[bytes], Path]:
    state = root / "nginx"
    state.mkdir(exist_ok=True)
    conf = state / "nginx.conf"
    conf.write_text(conf_text)
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(state)], stderr=subprocess.PIPE)
    return proc, state


@dataclass
class Fronted:
    server: LiveServer
    nginx_url: str
    token: str
    media_id: str


def _ready_video(server: LiveServer, tmp: Path) -> tuple[str, str]:
    from ebbtide.media.samples import generate_clip

    server.cli("users", "add", "alice", "--password", "pw-alice-secret")
    token = server.cli("users", "token", "alice").strip()
    clip = generate_clip(tmp / "clip.mp4", seconds=4, width=640, height=480)
    with open(clip, "rb") as fh:
        r = httpx.post(
            server.url + "/api/gallery/uploads",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": ("clip.mp4", fh, "video/mp4")},
            data={"title": "fronted"},
            timeout=60,
        )
    assert r.status_code == 201, r.text
    out = subprocess.run(
        [*EBBTIDE, "-c", str(server.config), "worker", "--once"],
        env=server.env(),
        capture_output=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    return token, str(r.json()["id"])


@pytest.fixture()
def fronted(tmp_path: Path) -> Iterator[Fronted]:
    yield from _front(tmp_path, accel=True)


@pytest.fixture()
def cached(tmp_path: Path) -> Iterator[Fronted]:
    yield from _front(tmp_path, accel=False, cache=True)


def _front(tmp_path: Path, accel: bool, cache: bool = False) -> Iterator[Fronted]:
    port = free_port()
    server = LiveServer(tmp_path)
    cfg: dict[str, object] = {"host": "127.0.0.1", "port": server.port, "workers": 1}
    if accel:
        cfg["accel_redirect"] = PREFIX
    server.config.write_text(
        server.config.read_text().replace(
            f"web:\n  host: 127.0.0.1\n  port: {server.port}\n  workers: 1\n",
            "web:\n" + "".join(f"  {k}: {v}\n" for k, v in cfg.items()),
        )
    )
    assert ("accel_redirect" in server.config.read_text()) is accel
    server.start()
    nginx = None
    try:
        token, media_id = _ready_video(server, tmp_path)
        text = nginx_conf(
            server.data_dir / "store",
            f"127.0.0.1:{server.port}",
            listen=f"127.0.0.1:{port}",
            internal_prefix=PREFIX,
            standalone=True,
            pid_dir=tmp_path / "nginx",
            user="root" if os.geteuid() == 0 else None,
            cache_dir=tmp_path / "cache" if cache else None,
        )
        nginx, _ = start_nginx(tmp_path, text)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert nginx.poll() is None, (nginx.stderr.read() if nginx.stderr else b"").decode()
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield Fronted(server, url, token, media_id)
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(timeout=10)
        server.stop()


def _segments(base: str, token: str, media_id: str) -> list[str]:
    h = {"Authorization": f"Bearer {token}"}
    master = m3u8.loads(httpx.get(f"{base}/api/stream/videos/{media_id}/master.m3u8", headers=h).text)
    out: list[str] = []
    for pl in master.playlists:
        variant = m3u8.loads(httpx.get(base + pl.uri).text)
        out += [s.uri for s in variant.segments]
        out += [variant.segment_map[0].uri] if variant.segment_map else []
    return out


def test_nginx_handoff_serves_the_store_bytes_with_the_apps_headers(fronted: Fronted) -> None:
    store_root = fronted.server.data_dir / "store"
    segs = _segments(fronted.nginx_url, fronted.token, fronted.media_id)
    assert len(segs) >= 4
    for url in segs:
        r = httpx.get(fronted.nginx_url + url)
        assert r.status_code == 200, (url, r.status_code, r.text[:200])
        key = urlsplit(url).path.removeprefix("/files/")
        assert r.content == (store_root / key).read_bytes()
        assert r.headers["content-type"] == "video/mp4"
        assert r.headers["cache-control"].startswith("public, max-age=")
        # the app alone answers with the hand-off header and no body
        direct = httpx.get(fronted.server.url + url)
        assert direct.headers["x-accel-redirect"].startswith(PREFIX) and direct.content == b""
    one = fronted.nginx_url + segs[0]
    part = httpx.get(one, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100
    assert httpx.get(one + "&extra=1").status_code == 403  # the app still checks every request
    assert httpx.get(fronted.nginx_url + urlsplit(one).path).status_code == 403
    internal = fronted.nginx_url + PREFIX + urlsplit(one).path.removeprefix("/files/")
    assert httpx.get(internal).status_code == 404  # nginx's internal location is not reachable


def test_hls_js_plays_and_switches_through_nginx(fronted: Fronted) -> None:
    from playwright.sync_api import sync_playwright
    from test_browser import ARGS, CHROMIUM

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.goto(fronted.nginx_url + "/login")
            page.fill("#username", "alice")
            page.fill("#password", "pw-alice-secret")
            page.click("#login")
            page.wait_for_url(fronted.nginx_url + "/")
            page.goto(f"{fronted.nginx_url}/watch/{fronted.media_id}")
            page.wait_for_selector("#player[data-levels]", timeout=30_000)
            wait_js(page, "document.getElementById('video').currentTime > 1", timeout=45_000)
            heights = page.evaluate("window.ebbtideHls.levels.map(l => l.height)")
            current = int(page.get_attribute("#player", "data-level") or "-1")
            target = next(i for i in range(len(heights)) if i != current)
            page.select_option("#quality", str(target))
            page.wait_for_selector(f"#player[data-level='{target}']", timeout=30_000)
            assert page.get_attribute("#player", "data-error") is None
        finally:
            browser.close()


def test_serve_runs_several_processes(tmp_path: Path) -> None:
    server = LiveServer(tmp_path)
    server.config.write_text(server.config.read_text().replace("workers: 1", "workers: 2"))
    server.start()
    try:
        assert server.proc is not None
        deadline = time.monotonic() + 20
        kids: list[psutil.Process] = []
        while time.monotonic() < deadline:
            kids = psutil.Process(server.proc.pid).children(recursive=True)
            if len(kids) >= 2:
                break
            time.sleep(0.2)
        assert len(kids) >= 2, kids
        for _ in range(20):
            assert httpx.get(server.url + "/health", timeout=5).status_code == 200
    finally:
        server.stop()


def test_nginx_edge_cache_serves_repeats_without_the_app(cached: Fronted) -> None:
    store_root = cached.server.data_dir / "store"
    seg = _segments(cached.nginx_url, cached.token, cached.media_id)[0]
    first = httpx.get(cached.nginx_url + seg)
    second = httpx.get(cached.nginx_url + seg)
    assert first.status_code == second.status_code == 200
    assert first.headers["x-cache-status"] == "MISS" and second.headers["x-cache-status"] == "HIT"
    assert (
        second.content
        == first.content
        == (store_root / urlsplit(seg).path.removeprefix("/files/")).read_bytes()
    )
    # a refused URL is never stored: each try reaches the app and is refused again
    for _ in range(2):
        bad = httpx.get(cached.nginx_url + seg + "&x=1")
        assert bad.status_code == 403 and bad.headers.get("x-cache-status") != "HIT"
