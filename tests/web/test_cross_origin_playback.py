"""Shaka Player and hls.js, on a page served from another origin, play an ebbtide stream in real
Chromium: from the local store (the app's signed /files/ URLs) and from S3 (moto, presigned URLs),
with CORS as configured (`cors.origins` is the page's origin). The players' scripts are served by
the page's own origin from tests/web/players/ (hls.js and Shaka Player as published on npm)."""

from __future__ import annotations

import functools
import subprocess
import threading
import uuid
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from web_helpers import EBBTIDE, LiveServer, free_port

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.xdist_group("web-browser"),
    pytest.mark.timeout(900),  # a serve start-up, two CLI calls, a worker and Chromium on a loaded box
]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--autoplay-policy=no-user-gesture-required"]  # fmt: skip
PLAYERS = Path(__file__).parent / "players"
PAGE = """<!doctype html><html><body>
<script src="hls.min.js"></script><script src="shaka-player.compiled.js"></script>
<script>
window.play = async (kind, url, api, token) => {
  const v = document.createElement('video'); v.muted = true; document.body.appendChild(v);
  const ours = (u) => u.startsWith(api + '/api/');
  window.errors = window.errors || [];
  if (kind === 'hls') {
    const h = new Hls({xhrSetup: (xhr, u) => {
      if (ours(u)) xhr.setRequestHeader('Authorization', 'Bearer ' + token); }});
    h.on(Hls.Events.ERROR, (e, d) => { if (d.fatal) window.errors.push('hls: ' + d.details); });
    h.loadSource(url); h.attachMedia(v);
  } else {
    shaka.polyfill.installAll();
    const p = new shaka.Player(); await p.attach(v);
    p.getNetworkingEngine().registerRequestFilter((type, req) => {
      if (ours(req.uris[0])) req.headers['Authorization'] = 'Bearer ' + token; });
    p.addEventListener('error', (e) => window.errors.push('shaka: ' + e.detail.code));
    await p.load(url);
  }
  await v.play().catch((e) => window.errors.push(kind + ' play: ' + e));
  window['video_' + kind] = v;
};
</script></body></html>"""


@pytest.fixture()
def page_origin(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "page"
    root.mkdir()
    (root / "index.html").write_text(PAGE)
    for name in ("hls.min.js", "shaka-player.compiled.js"):
        (root / name).write_bytes((PLAYERS / name).read_bytes())
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.mark.parametrize("store", ["file", "s3"])
def test_shaka_and_hlsjs_play_from_another_origin(
    store: str, tmp_path: Path, page_origin: str, clip: Path, moto_endpoint: str
) -> None:
    from playwright.sync_api import sync_playwright

    extra: dict[str, Any] = {
        "cors": {"origins": [page_origin]},
        "media": {"rungs": [{"height": 240, "bitrate_kbps": 400}], "segment_seconds": 1, "gop_seconds": 1},
    }
    if store == "s3":
        bucket = f"hls-{uuid.uuid4().hex[:8]}"
        extra["store"] = {"url": f"s3://{bucket}", "endpoint_url": moto_endpoint, "region": "us-east-1"}
        s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [{  # docs/playback.md's rule
            "AllowedOrigins": [page_origin], "AllowedMethods": ["GET", "HEAD"],
            "AllowedHeaders": ["Range", "Authorization"],
            "ExposeHeaders": ["Content-Length", "Content-Range"],
            "MaxAgeSeconds": 3600}]})  # fmt: skip
    (tmp_path / "app").mkdir()
    server = LiveServer(tmp_path / "app", extra).start()
    try:
        server.cli("users", "add", "alice", "--password", "pw-alice-123")
        token = server.cli("users", "token", "alice").strip()
        auth = {"Authorization": f"Bearer {token}"}
        with open(clip, "rb") as fh:
            files = {"file": ("clip.mp4", fh, "video/mp4")}
            r = httpx.post(server.url + "/api/gallery/uploads", headers=auth, timeout=60, files=files,
                           data={"title": "cross"})  # fmt: skip
        assert r.status_code == 201, r.text
        media_id = r.json()["id"]
        done = subprocess.run([*EBBTIDE, "-c", str(server.config), "worker", "--once", "--idle-exit", "30s"],
                              env=server.env(), capture_output=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        master = f"{server.url}/api/stream/videos/{media_id}/master.m3u8"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page()
                page.goto(page_origin + "/index.html")
                for kind in ("hls", "shaka"):
                    args = [kind, master, server.url, token]
                    page.evaluate("([k, u, a, t]) => window.play(k, u, a, t)", args)
                    page.wait_for_function(
                        f"(window.errors || []).length > 0 || (window.video_{kind} && "
                        f"window.video_{kind}.currentTime > 1)", timeout=45_000)  # fmt: skip
                    assert page.evaluate("window.errors") == [], f"{kind} on {store}"
            finally:
                browser.close()
    finally:
        server.stop()
