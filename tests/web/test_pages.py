"""Pages as a newcomer meets them (issue 16): HTML error pages for browsers and one JSON error shape
for everything else, the favicon, a failed video's page, and jobs waiting to retry.

The failed and retrying states are reached through the real catalog and queue calls the worker and
the reconciler make (start_attempt / finish_attempt / release, mark_dead); no worker is needed to
make a file fail.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from web_helpers import Account, Env

from ebbtide.catalog.states import JobState
from ebbtide.web.history import take_sample
from ebbtide.web.pages import GENERIC_TODO, failure_advice

HTML = {"Accept": "text/html,application/xhtml+xml"}
FAILED = "the upload is not a video file: clip.mp4 has no video stream — upload an MP4, MOV or MKV"


def _login(env: Env, who: Account) -> None:
    r = env.client.post("/login", data={"username": who.user.name, "password": who.password},
                        headers={"Origin": "http://127.0.0.1:8000"}, follow_redirects=False)
    assert r.status_code == 303 and "ebbtide_session" in r.cookies, r.text


def _csp_clean(html: str) -> None:
    """No inline scripts, styles or handlers: a strict Content-Security-Policy can apply."""
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert "<style" not in html and " style=" not in html and not re.search(r"\son[a-z]+=", html)


def _queued(env: Env, who: Account, clip: Path, title: str) -> dict[str, Any]:
    r = env.upload(who, clip, title)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _fail_once(env: Env, media_id: str, error: str) -> None:
    """What the worker does when an attempt fails and will be retried."""
    cat = env.services.catalog
    job_id = cat.get_media(media_id).job_id
    assert job_id is not None
    (delivery,) = env.services.queue.receive(wait=1, lease=30)
    attempt = cat.start_attempt(job_id, "w-test-1", delivery.receive_count)
    assert attempt is not None
    cat.finish_attempt(job_id, attempt.id, JobState.QUEUED, error=error)
    env.services.queue.release(delivery, 600)


# errors -----------------------------------------------------------------------------------------
def test_a_browser_gets_an_html_404_page(env: Env) -> None:
    r = env.client.get("/no-such-page", headers=HTML)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in r.text
    assert "There is nothing at this address." in r.text
    assert 'href="/"' in r.text and 'href="/login"' in r.text  # not signed in: offer both
    _csp_clean(r.text)


def test_a_signed_in_browser_gets_an_html_404_for_a_missing_video(env: Env) -> None:
    _login(env, env.alice)
    r = env.client.get("/watch/nosuchvideo", headers=HTML)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in r.text and env.alice.user.name in r.text  # header shows who is in


def test_apis_and_scripts_get_one_json_error_shape(env: Env) -> None:
    answers = [
        env.client.get("/no-such-page"),  # no Accept: text/html
        env.client.get("/api/no-such-api", headers=HTML),  # /api/ is never HTML
        env.client.get("/api/gallery/videos/nosuchvideo", headers=env.alice.headers),
        env.client.post("/health"),  # wrong method
    ]
    assert [r.status_code for r in answers] == [404, 404, 404, 405]
    for r in answers:
        body = r.json()
        assert set(body) == {"error", "hint"}, body
        assert body["error"] and "detail" not in body
    assert answers[0].json() == {"error": "There is nothing at this address.",
                                 "hint": "check the address, or start from the gallery"}


def test_favicon(env: Env) -> None:
    r = env.client.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"] == "image/x-icon"
    assert r.content[:4] == b"\x00\x00\x01\x00" and len(r.content) > 500
    page = env.client.get("/login")
    assert '<link rel="icon" href="/favicon.ico"' in page.text


# failed videos ------------------------------------------------------------------------------------
def test_failure_advice_splits_what_went_wrong_from_what_to_do() -> None:
    assert failure_advice(FAILED) == (
        "the upload is not a video file: clip.mp4 has no video stream", "Upload an MP4, MOV or MKV."
    )
    assert failure_advice("ffmpeg ran out of memory") == ("ffmpeg ran out of memory", GENERIC_TODO)
    assert failure_advice(None)[1] == GENERIC_TODO


def test_a_failed_videos_page_shows_the_error_and_what_to_do(env: Env, clip: Path) -> None:
    v = _queued(env, env.alice, clip, "broken")
    job_id = env.services.catalog.get_media(v["id"]).job_id
    assert job_id is not None
    env.services.catalog.mark_dead(job_id, FAILED)
    _login(env, env.alice)
    r = env.client.get(f"/watch/{v['id']}", headers=HTML)
    assert r.status_code == 200
    assert "This video could not be processed" in r.text
    what = "the upload is not a video file: clip.mp4 has no video stream"
    assert f'<p class="error" id="failed-error">{what}</p>' in r.text
    assert '<p id="failed-todo">Upload an MP4, MOV or MKV.</p>' in r.text
    assert "<video" not in r.text and "hls.min.js" not in r.text  # no dead player
    _csp_clean(r.text)


# retries --------------------------------------------------------------------------------------------
def test_a_video_waiting_to_retry_says_so_and_why(env: Env, clip: Path) -> None:
    v = _queued(env, env.alice, clip, "flaky")
    before = env.client.get(f"/api/gallery/videos/{v['id']}", headers=env.alice.headers).json()
    assert before["state"] == "queued" and before["retrying"] is False
    _fail_once(env, v["id"], "ffmpeg was killed (signal 9)")
    got = env.client.get(f"/api/gallery/videos/{v['id']}", headers=env.alice.headers).json()
    assert got["state"] == "queued"
    assert got["retrying"] is True and got["attempts"] == 1 and got["max_attempts"] == 5
    assert got["last_error"] == "ffmpeg was killed (signal 9)"
    # the chart's samples count it: waiting to retry is pending work, not an empty queue
    sample = take_sample(env.services)
    assert (sample.visible, sample.in_flight, sample.delayed) == (0, 0, 1)
    # the API serves the background sampler's ring; its next sample (every fleet.interval) has it
    deadline = time.monotonic() + 20
    while True:
        last = env.client.get("/api/fleet/history", headers=env.admin.headers).json()["samples"][-1]
        if last["delayed"] == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert (last["visible"], last["in_flight"], last["delayed"]) == (0, 0, 1)


def test_pages_have_no_inline_scripts_or_styles(env: Env) -> None:
    _csp_clean(env.client.get("/login").text)
    _login(env, env.admin)
    for path in ("/", "/upload", "/fleet"):
        r = env.client.get(path, headers=HTML)
        assert r.status_code == 200, path
        _csp_clean(r.text)
