"""A chunked video in real Chromium with hls.js: it plays while the rest encodes (EVENT playlist,
`currentTime` advancing before the last chunk exists, and again after catching up with the
encode), then as VOD across the chunk boundaries with no stall longer than 0.5 s, switching rungs
across a boundary.

Parts are run one at a time by the real worker runtime (`once=True`), so the test decides when
each chunk lands."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from web_helpers import LiveServer, wait_js

from ebbtide.config import load_settings
from ebbtide.services import Services, open_services
from ebbtide.worker.runtime import Worker

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("web-browser")]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
SECONDS = 12
EXTRA = {
    "media": {
        "chunk_min_seconds": 4, "max_chunks": 3, "segment_seconds": 2, "gop_seconds": 2,
        "preset": "ultrafast", "threads": 1,
        "rungs": [{"height": 360, "bitrate_kbps": 600}, {"height": 180, "bitrate_kbps": 200}],
    },
    # a slow pool (0.02 media s per s, as planned, not as run): the chunk planner splits a 12 s clip
    # only when encoding it whole would take longer than parts plus their overhead
    "fleet": {"interval": 1, "pools": [{"name": "local", "provider": "local", "max": 3, "boot_time": 0,
                                        "speed": 0.02}]},
}  # fmt: skip

LOADED = "window.ebbtideHls.levels.find(l => l.details).details"  # the playlist hls.js loaded
# Stalls: time between a `waiting` event and the next `playing`, kept on window.stalls.
WATCH = """
(() => {
  const v = document.getElementById('video');
  window.stalls = []; let since = null;
  v.addEventListener('waiting', () => { since = performance.now(); });
  v.addEventListener('playing', () => {
    if (since !== null) { window.stalls.push(performance.now() - since); since = null; }
  });
})()
"""


@pytest.fixture()
def live(tmp_path: Path) -> Iterator[tuple[LiveServer, Services]]:
    server = LiveServer(tmp_path, extra=EXTRA).start()
    services = open_services(load_settings(server.config, env={}))
    try:
        yield server, services
    finally:
        services.close()
        server.stop()


def one_job(services: Services) -> None:
    assert Worker(services, pool="local", once=True, idle_exit=5, install_signals=False).run() == 0


def test_plays_while_encoding_then_across_chunk_boundaries(
    live: tuple[LiveServer, Services], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    from ebbtide.media.samples import generate_clip

    server, services = live
    server.cli("users", "add", "ada", "--password", "pw-ada-12345")
    token = server.cli("users", "token", "ada").strip()
    auth = {"Authorization": f"Bearer {token}"}
    clip = generate_clip(tmp_path / "match.mp4", seconds=SECONDS, width=640, height=360)
    with open(clip, "rb") as fh:
        files = {"file": ("match.mp4", fh, "video/mp4")}
        r = httpx.post(
            f"{server.url}/api/gallery/uploads",
            headers=auth,
            files=files,
            data={"title": "Match"},
            timeout=60,
        )
    assert r.status_code == 201, r.text
    vid = r.json()["id"]

    def video() -> dict[str, Any]:
        return dict(httpx.get(f"{server.url}/api/gallery/videos/{vid}", headers=auth).json())

    for _ in range(3):  # split, audio (+ thumbnail), chunk 1 of 3
        one_job(services)
    v = video()
    assert v["state"] == "transcoding" and 0 < v["playable_seconds"] < SECONDS, v
    assert v["playlist_url"]
    edge = float(v["playable_seconds"])  # chunk 1's end: the first boundary (short: FIRST_CHUNK_WEIGHT)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(server.url + "/login")
            page.fill("#username", "ada")
            page.fill("#password", "pw-ada-12345")
            page.click("#login")
            page.wait_for_url(server.url + "/")
            page.goto(f"{server.url}/watch/{vid}")
            page.wait_for_selector("#player[data-levels]", timeout=30_000)
            page.evaluate("document.getElementById('video').muted = true")
            wait_js(page, "document.getElementById('video').currentTime > 1", timeout=30_000)
            # playing before the last chunk exists, from a growing EVENT playlist
            assert video()["state"] == "transcoding"
            assert page.evaluate(LOADED + ".type") == "EVENT"
            assert "available" in page.inner_text("#player-status")
            # the viewer catches up with the encode (chunk 1 ends at `edge`) and waits there;
            # it must go on when the next chunks land (a wrapped audio `tfdt`, or VOD audio under
            # live video, stalled hls.js here for good)
            wait_js(page, f"document.getElementById('video').currentTime > {edge - 0.5}", timeout=30_000)

            for _ in range(3):  # chunks 2 and 3, then the stitch
                one_job(services)
            assert video()["state"] == "complete"
            wait_js(page, f"document.getElementById('video').currentTime > {edge + 1}", timeout=60_000)
            wait_js(page, LOADED + ".live === false", timeout=30_000)

            # VOD now: play across both chunk boundaries (`edge`, and one before 9 s), switching
            # rungs before the first
            start = max(0.0, edge - 1.5)
            page.evaluate(WATCH)
            page.evaluate(
                "(t) => { const v = document.getElementById('video'); v.currentTime = t; v.play(); }", start
            )
            wait_js(page, f"document.getElementById('video').currentTime > {start + 0.5}", timeout=30_000)
            current = int(page.get_attribute("#player", "data-level") or "0")
            target = 1 - current
            page.select_option("#quality", str(target))
            page.wait_for_selector(f"#player[data-level='{target}']", timeout=30_000)
            wait_js(page, "document.getElementById('video').currentTime > 9", timeout=60_000)
            stalls = page.evaluate("window.stalls.slice(1)")  # the first is the seek itself
            assert all(s < 500 for s in stalls), stalls
            assert page.get_attribute("#player", "data-error") is None
        finally:
            browser.close()
