"""The pages in real Chromium (Debian's, via Playwright with executable_path): log in, upload a
generated clip through the page, watch it become ready (a real `ebbtide worker` subprocess does the
transcode), play it with hls.js past 2 s, switch quality, and find the worker on the fleet dashboard.
Screenshots go to the test's tmp folder; the player shot is copied to test-output/ at the repo root."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from web_helpers import EBBTIDE, REPO, LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("web-browser")]

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture()
def stack(tmp_path: Path) -> Iterator[tuple[LiveServer, subprocess.Popen[bytes]]]:
    server = LiveServer(tmp_path).start()
    server.cli("users", "add", "root", "--password", "pw-root-123", "--admin")
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed in the finally below
    worker = subprocess.Popen(
        [*EBBTIDE, "-c", str(server.config), "worker", "--pool", "local", "--idle-exit", "120s"],
        env=server.env(),
        stdout=log,
        stderr=log,
    )
    try:
        yield server, worker
    finally:
        if worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        log.close()
        server.stop()


def _wait_js(page: Any, expression: str, timeout: float = 30_000) -> None:
    """Poll an expression through CDP (page.evaluate is exempt from the page's CSP, which forbids the
    string eval that Playwright's wait_for_function does inside the page)."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(100)


def test_upload_play_switch_quality_and_fleet(
    stack: tuple[LiveServer, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    from ebbtide.media.samples import generate_clip

    server, worker = stack
    clip = generate_clip(tmp_path / "holiday.mp4", seconds=5, width=640, height=480)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            refused: list[str] = []  # the pages must run under their CSP without a violation
            page.on("console", lambda m: refused.append(m.text) if "Security Policy" in m.text else None)
            page.goto(server.url + "/")
            assert "/login" in page.url
            page.fill("#username", "root")
            page.fill("#password", "pw-root-123")
            page.click("#login")
            page.wait_for_url(server.url + "/")

            codec = page.evaluate("""MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001f"')""")
            assert codec, "this Chromium cannot decode H.264 in MSE"

            page.goto(server.url + "/upload")
            page.fill("#title", "Holiday")
            page.set_input_files("#file", str(clip))
            page.click("#upload-button")
            _wait_js(page, "document.getElementById('progress').value === 100", timeout=30_000)
            page.screenshot(path=str(shots / "upload.png"))
            page.wait_for_url(server.url + "/", timeout=15_000)
            card = page.locator("article.video", has_text="Holiday")
            card.wait_for(timeout=15_000)
            page.wait_for_selector("article.video[data-state=complete]", timeout=120_000)
            page.wait_for_selector("article.video[data-state=complete] img", timeout=10_000)
            page.screenshot(path=str(shots / "gallery.png"))

            page.click("article.video[data-state=complete] a.title")
            page.wait_for_url("**/watch/*")
            page.wait_for_selector("#player[data-levels]", timeout=30_000)
            levels = int(page.get_attribute("#player", "data-levels") or "0")
            assert levels >= 2, "a 640x480 clip should give at least 480p and 360p"
            _wait_js(page, "document.getElementById('video').currentTime > 2", timeout=45_000)
            page.screenshot(path=str(shots / "player.png"))

            heights = page.evaluate("window.ebbtideHls.levels.map(l => l.height)")
            current = int(page.get_attribute("#player", "data-level") or "-1")
            target = next(i for i in range(len(heights)) if i != current)
            page.select_option("#quality", str(target))
            page.wait_for_selector(f"#player[data-level='{target}']", timeout=30_000)
            assert page.inner_text("#level") == f"playing {heights[target]}p"
            t0 = page.evaluate("document.getElementById('video').currentTime")
            page.evaluate(
                "document.getElementById('video').currentTime = 0.5; document.getElementById('video').play()"
            )
            _wait_js(
                page,
                "(() => { const v = document.getElementById('video');"
                " return v.currentTime > 1.5 && !v.paused })()",
                timeout=30_000,
            )
            assert page.get_attribute("#player", "data-error") is None
            page.screenshot(path=str(shots / "player-switched.png"))
            print(f"levels {heights}, switched {current} -> {target}, played to {t0:.1f} s before seek")

            token = server.cli("users", "token", "root").strip()
            workers = httpx.get(
                f"{server.url}/api/fleet/workers?include_gone=true",
                headers={"Authorization": f"Bearer {token}"},
            ).json()
            mine = [w for w in workers if w["pid"] == worker.pid]
            assert mine and mine[0]["jobs_done"] >= 1, workers
            page.goto(server.url + "/fleet")
            row = page.locator(f"#workers tbody tr[data-id='{mine[0]['id']}']")
            row.wait_for(timeout=15_000)
            assert "local" in row.inner_text()
            _wait_js(page, "Number(document.getElementById('chart').dataset.points) >= 1", timeout=15_000)
            page.screenshot(path=str(shots / "fleet.png"), full_page=True)
            assert refused == [], refused
        finally:
            browser.close()
    out = REPO / "test-output"
    out.mkdir(exist_ok=True)
    for name in ("player.png", "fleet.png"):
        shutil.copy(shots / name, out / f"web-{name}")
    assert (out / "web-player.png").stat().st_size > 10_000
