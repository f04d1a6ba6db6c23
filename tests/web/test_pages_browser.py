"""Every page at 1280 px and at 390 px (a phone) in real Chromium, screenshots in test-output/pages/.

A live `ebbtide serve`; the data behind it is made with the real parts: a clip transcoded by the
real worker runtime (complete), one dead-lettered with a worker-style error (failed), one whose
first attempt failed and waits for its retry (queued, delayed in the queue), and the worker that
did the transcode has exited (a gone worker for the fleet page to fold away).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from web_helpers import REPO, LiveServer, wait_js

from ebbtide.catalog.states import JobState, MediaState
from ebbtide.config import load_settings
from ebbtide.services import Services, open_services

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("web-browser")]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
OUT = REPO / "test-output" / "pages"
FAILED = "the upload is not a video file: match.mp4 has no video stream — upload an MP4, MOV or MKV"
WIDTHS = {"wide": (1280, 800), "phone": (390, 844)}


@pytest.fixture()
def site(tmp_path: Path) -> Iterator[tuple[LiveServer, Services, dict[str, str]]]:
    from ebbtide.media.samples import generate_clip
    from ebbtide.worker.intake import submit_file
    from ebbtide.worker.runtime import Worker

    server = LiveServer(tmp_path, {"media": {"rungs": [{"height": 240, "bitrate_kbps": 400},
                                                       {"height": 144, "bitrate_kbps": 200}]}}).start()
    server.cli("users", "add", "root", "--password", "pw-root-123", "--admin")
    services = open_services(load_settings(server.config, env={}))
    try:
        root = services.catalog.find_user("root")
        assert root is not None
        clip = generate_clip(tmp_path / "beach.mp4", seconds=4, width=426, height=240)
        ready = submit_file(services, clip, root.id, "Beach, ready")
        assert Worker(services, pool="local", once=True, idle_exit=3, install_signals=False).run() == 0
        assert services.catalog.get_media(ready.id).state == MediaState.COMPLETE
        failed = submit_file(services, clip, root.id, "Match, failed")
        job = services.catalog.get_media(failed.id).job_id
        assert job is not None
        (d,) = services.queue.receive(wait=1, lease=30)  # as a worker would, then the DLQ
        services.queue.dead_letter(d, FAILED)
        services.catalog.mark_dead(job, FAILED)
        retry = submit_file(services, clip, root.id, "Interview, retrying")
        job = services.catalog.get_media(retry.id).job_id
        assert job is not None
        (d,) = services.queue.receive(wait=1, lease=30)
        att = services.catalog.start_attempt(job, "w-test-1", d.receive_count)
        assert att is not None
        services.catalog.finish_attempt(job, att.id, JobState.QUEUED, error="ffmpeg was killed (signal 9)")
        services.queue.release(d, 900)
        yield server, services, {"ready": ready.id, "failed": failed.id, "retry": retry.id}
    finally:
        services.close()
        server.stop()


def test_pages_at_1280_and_390(site: tuple[LiveServer, Services, dict[str, str]]) -> None:
    from playwright.sync_api import Page, sync_playwright

    server, _services, ids = site
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)

    def fits(page: Page, width: int) -> None:
        """Nothing wider than the screen; the Log out button is on it."""
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, f"{page.url}: page is {scroll} px wide at {width}"
        if page.locator(".logout button").count():
            box = page.locator(".logout button").bounding_box()
            assert box is not None and box["x"] + box["width"] <= width, box

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for label, (width, height) in WIDTHS.items():
                page = browser.new_page(viewport={"width": width, "height": height})
                shot = lambda name, page=page, label=label: page.screenshot(  # noqa: E731
                    path=str(OUT / f"{name}-{label}.png"), full_page=True)

                page.goto(server.url + "/login")
                fits(page, width)
                shot("login")
                page.fill("#username", "root")
                page.fill("#password", "pw-root-123")
                page.click("#login")
                page.wait_for_url(server.url + "/")

                page.wait_for_selector("article.video[data-state=complete] img", timeout=30_000)
                wait_js(page, "document.querySelector('article.video img').complete")
                retry = page.locator(f"article.video[data-id='{ids['retry']}']")
                assert retry.get_attribute("data-state") == "retrying"
                assert "Attempt 1 of 5 failed: ffmpeg was killed (signal 9). It will be tried again." in (
                    retry.inner_text())
                failed = page.locator(f"article.video[data-id='{ids['failed']}']")
                assert failed.get_attribute("data-state") == "failed"
                assert "What to do" in failed.inner_text()
                fits(page, width)
                shot("gallery")

                page.goto(f"{server.url}/watch/{ids['ready']}")
                page.wait_for_selector("#player[data-levels]", timeout=30_000)
                wait_js(page, "document.getElementById('video').currentTime > 1", timeout=45_000)
                page.evaluate("document.getElementById('video').pause()")
                fits(page, width)
                shot("player")

                page.goto(f"{server.url}/watch/{ids['failed']}")
                assert page.inner_text("#failed-error") == (
                    "the upload is not a video file: match.mp4 has no video stream")
                assert page.inner_text("#failed-todo") == "Upload an MP4, MOV or MKV."
                assert page.locator("video").count() == 0
                fits(page, width)
                shot("failed")

                page.goto(f"{server.url}/watch/{ids['retry']}")
                page.wait_for_selector("#player[data-state=retrying]", timeout=15_000)
                assert page.inner_text("#player-status").startswith("Waiting to retry: attempt 1 of 5 failed")

                page.goto(server.url + "/fleet")
                wait_js(page, "Number(document.getElementById('chart').dataset.points) >= 1",
                                       timeout=15_000)
                ticks = page.locator("#chart-axis span").all_inner_texts()
                assert len(ticks) == 5 and all(":" in t for t in ticks), ticks
                # the retrying job counts as queued work: the queue line is at the top (1), not 0
                last = page.get_attribute("#chart polyline.q", "points").split()[-1]  # type: ignore[union-attr]
                assert last.endswith(",15.0"), last
                # the worker that transcoded has exited: folded away, not a row at 0 %
                page.wait_for_selector("#gone-workers:not([hidden])", timeout=15_000)
                assert page.inner_text("#gone-summary") == "1 finished worker"
                assert page.locator("#workers tbody tr").count() == 0
                assert page.is_visible("#no-workers")
                # the Pools table is read whole, no sideways scroll in its box (at 390 px: a card per pool)
                page.wait_for_selector("#pools tbody tr td", timeout=15_000)
                inner, outer = page.evaluate(
                    "(() => { const w = document.getElementById('pools').parentElement;"
                    " return [w.scrollWidth, w.clientWidth]; })()")
                assert inner <= outer, f"Pools scrolls at {width}: {inner} > {outer}"
                minmax = page.locator("#pools tbody tr").first.locator("td").nth(5)
                assert minmax.get_attribute("data-label") == "min/max"
                box = minmax.bounding_box()
                assert box is not None and box["x"] + box["width"] <= width, box
                fits(page, width)
                shot("fleet")

                resp = page.goto(server.url + "/no-such-page")
                assert resp is not None and resp.status == 404
                assert page.inner_text("h1") == "Not found"
                fits(page, width)
                shot("404")
                page.close()
        finally:
            browser.close()
    icon = httpx.get(server.url + "/favicon.ico")
    assert icon.status_code == 200 and icon.content[:4] == b"\x00\x00\x01\x00"
    shots = sorted(q.name for q in OUT.glob("*.png"))
    assert len(shots) == 12, shots
    assert all((OUT / s).stat().st_size > 5_000 for s in shots)
