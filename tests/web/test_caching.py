"""Segments a shared cache can keep: aligned signing windows, conditional requests, no unsigned
query parameters, RFC 9111 storability, and the same signature checks at the origin."""

from __future__ import annotations

from email.utils import formatdate
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import m3u8
import pytest
from web_helpers import Env

from ebbtide.storage import signing
from ebbtide.web.conditional import not_modified, signed_cache_control


def uris(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def storable_by_shared_cache(method: str, status: int, request_headers: dict[str, str], cc: str) -> bool:
    """RFC 9111 §3 and §3.5, for a shared cache: what must hold for it to store a response."""
    directives = {d.strip().split("=", 1)[0].lower(): d.strip() for d in cc.split(",") if d.strip()}
    if method != "GET" or status not in (200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501):
        return False
    if "no-store" in directives or "private" in directives:
        return False
    authorized = any(k.lower() == "authorization" for k in request_headers)
    if authorized and not ({"public", "s-maxage", "must-revalidate"} & directives.keys()):
        return False
    # explicit freshness (max-age > 0 or s-maxage) so the cache can serve it without asking
    for name in ("s-maxage", "max-age"):
        if name in directives:
            return int(directives[name].split("=", 1)[1]) > 0
    return "public" in directives


# -- pure rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inm", "ims", "expected"),
    [
        ('"abc"', None, True),
        ('W/"abc"', None, True),
        ('"x", "abc"', None, True),
        ("*", None, True),
        ('"other"', None, False),
        ('"other"', formatdate(2_000_000_000, usegmt=True), False),  # If-None-Match wins
        (None, formatdate(1_000, usegmt=True), True),
        (None, formatdate(999, usegmt=True), False),
        (None, "not a date", False),
        (None, None, False),
    ],
)
def test_not_modified_rules(inm: str | None, ims: str | None, expected: bool) -> None:
    assert not_modified(inm, ims, '"abc"', mtime=1_000.4) is expected


def test_aligned_expiry_is_one_url_per_window_and_never_shorter() -> None:
    seen = {signing.expiry(t, 600, 3600) for t in range(7200, 7200 + 3000, 7)}
    assert seen == {3600 * 3}  # one expiry for everyone asking within the window
    for now in (0.5, 1234.0, 3599.9, 3600.0, 99_999.3):
        e = signing.expiry(now, 600, 3600)
        assert now + 600 <= e < now + 600 + 3600 and e % 3600 == 0
    assert signing.expiry(10.2, 30) == 41  # no window: exactly as asked, rounded up


def test_cache_control_for_signed_objects() -> None:
    assert signed_cache_control("hls/a/720p/seg_00001.m4s", 1800.7) == "public, max-age=1800, immutable"
    assert signed_cache_control("hls/a/720p/index.m3u8", 10) == "public, max-age=10"
    assert signed_cache_control("x.m4s", -5) == "public, max-age=0"
    assert signed_cache_control("x.m4s", 10**9).startswith("public, max-age=86400")


# -- through the app --------------------------------------------------------------------------


@pytest.fixture()
def ready(env: Env, clip: Path) -> dict:
    return env.ready_video(env.alice, clip)


def _variant_text(env: Env, ready: dict) -> tuple[str, str]:
    master = m3u8.loads(env.client.get(ready["playlist_url"], headers=env.alice.headers).text)
    url = master.playlists[0].uri
    r = env.client.get(url)
    assert r.status_code == 200
    return url, r.text


def test_two_playlist_fetches_in_one_window_hand_out_identical_segment_urls(env: Env, ready: dict) -> None:
    url, first = _variant_text(env, ready)
    _, second = _variant_text(env, ready)
    assert uris(first) == uris(second) and uris(first)
    # a playlist reached by its signature is the same for everyone: shared caches may keep it
    cc = env.client.get(url).headers["cache-control"]
    assert storable_by_shared_cache("GET", 200, {}, cc)
    # the master needs the owner's credentials: never stored by a shared cache
    m = env.client.get(ready["playlist_url"], headers=env.alice.headers)
    assert not storable_by_shared_cache("GET", 200, env.alice.headers, m.headers["cache-control"])


def test_segment_is_storable_by_a_shared_cache_and_revalidates_with_304(env: Env, ready: dict) -> None:
    _, text = _variant_text(env, ready)
    seg = uris(text)[0]
    r = env.client.get(seg)
    assert r.status_code == 200 and r.content
    cc = r.headers["cache-control"]
    assert storable_by_shared_cache("GET", r.status_code, {}, cc), cc
    max_age = int(cc.split("max-age=")[1].split(",")[0])
    expires = int(parse_qs(urlsplit(seg).query)["expires"][0])
    assert 0 < max_age <= expires - int(env.services.clock.now()) + 1  # never cached past the URL
    etag, modified = r.headers["etag"], r.headers["last-modified"]
    again = env.client.get(seg, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert env.client.get(seg, headers={"If-Modified-Since": modified}).status_code == 304
    assert env.client.get(seg, headers={"If-None-Match": '"stale"'}).status_code == 200
    ranged = env.client.get(seg, headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == r.content[10:20]


def test_origin_still_requires_a_valid_signature(env: Env, ready: dict) -> None:
    _, text = _variant_text(env, ready)
    seg = uris(text)[0]
    parts = urlsplit(seg)
    assert env.client.get(parts.path).status_code == 403  # no signature
    assert env.client.get(seg + "&cachebuster=1").status_code == 403  # unsigned extra parameter
    q = parse_qs(parts.query)
    later = f"{parts.path}?expires={int(q['expires'][0]) + 3600}&sig={q['sig'][0]}"
    assert env.client.get(later).status_code == 403  # a longer life cannot be forged
    # the same refusal for a variant playlist's own signature
    url, _ = _variant_text(env, ready)
    assert env.client.get(url + "&x=1").status_code in (401, 403)


def test_filename_is_signed(env: Env, ready: dict) -> None:
    store = env.services.store
    thumb = f"/api/stream/videos/{ready['id']}/thumbnail"
    url = env.client.get(thumb, headers=env.alice.headers, follow_redirects=False).headers["location"]
    key = urlsplit(url).path.removeprefix("/files/")
    named = store.signed_get_url(key, 60, filename="poster.jpg")
    rel = "/files/" + named.split("/files/", 1)[1]
    r = env.client.get(rel)
    assert r.status_code == 200 and "poster.jpg" in r.headers["content-disposition"]
    assert env.client.get(rel.replace("poster.jpg", "other.jpg")).status_code == 403
