"""Streaming API and /files: signed playlists, segments with Range and caching, owner scoping,
expired and tampered signatures. The HLS set is made by the real worker from a real clip."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import m3u8
import pytest
from web_helpers import Env

from ebbtide.storage import signing


def uris(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@pytest.fixture()
def ready(env: Env, clip: Path) -> dict:
    return env.ready_video(env.alice, clip)


def test_master_variant_segments_and_thumbnail(env: Env, ready: dict) -> None:
    c, h = env.client, env.alice.headers
    r = c.get(ready["playlist_url"], headers=h)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    assert "private" in r.headers["cache-control"]
    master = m3u8.loads(r.text)
    assert master.is_variant and master.playlists
    variant_url = master.playlists[0].uri
    assert "sig=" in variant_url and "expires=" in variant_url
    # variant playlists carry their own signature: no credentials needed to follow them
    v = c.get(variant_url)
    assert v.status_code == 200 and v.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    variant = m3u8.loads(v.text)
    assert variant.segments and abs(sum(s.duration for s in variant.segments) - ready["duration"]) < 0.5
    init = variant.segment_map[0].uri if variant.segment_map else None
    for url in [init, *[s.uri for s in variant.segments]]:
        if url is None:
            continue
        assert url.startswith("/files/users/") and "sig=" in url
        seg = c.get(url)
        assert seg.status_code == 200 and seg.headers["content-type"] == "video/mp4"
        assert "max-age" in seg.headers["cache-control"] and seg.headers["accept-ranges"] == "bytes"
        assert seg.headers.get("etag")
    # a byte range of a segment: 206 with Content-Range
    seg_url = variant.segments[0].uri
    part = c.get(seg_url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100
    assert part.headers["content-range"].startswith("bytes 0-99/")
    assert c.head(seg_url).status_code == 200
    # thumbnail: a signed JPEG, via the API redirect and via the gallery record
    t = c.get(f"/api/stream/videos/{ready['id']}/thumbnail", headers=h, follow_redirects=False)
    assert t.status_code == 307 and "sig=" in t.headers["location"]
    img = c.get(t.headers["location"])
    assert (
        img.status_code == 200
        and img.headers["content-type"] == "image/jpeg"
        and img.content[:2] == b"\xff\xd8"
    )
    assert c.get(ready["thumbnail_url"]).status_code == 200


def test_other_user_gets_404_for_video_playlist_and_signed_urls(env: Env, ready: dict) -> None:
    c = env.client
    vid = ready["id"]
    bob = env.bob.headers
    assert c.get(f"/api/gallery/videos/{vid}", headers=bob).status_code == 404
    assert c.get(f"/api/stream/videos/{vid}/master.m3u8", headers=bob).status_code == 404
    assert (
        c.get(f"/api/stream/videos/{vid}/thumbnail", headers=bob, follow_redirects=False).status_code == 404
    )
    master = c.get(ready["playlist_url"], headers=env.alice.headers).text
    variant_url = uris(master)[0]
    variant_path = urlparse(variant_url).path
    assert (
        c.get(variant_path, headers=bob).status_code == 404
    )  # without the signature, bob's creds don't help
    seg_url = uris(c.get(variant_url).text)[0]
    # alice's signed segment URL presented with bob's identity: 404, not the bytes
    assert c.get(seg_url, headers=bob).status_code == 404
    assert c.get(ready["thumbnail_url"], headers=bob).status_code == 404
    assert c.get(seg_url, headers=env.alice.headers).status_code == 200
    # no credentials at all: the master needs them
    assert c.get(f"/api/stream/videos/{vid}/master.m3u8").status_code == 401


def _with(url: str, **changes: str) -> str:
    p = urlparse(url)
    q = {k: v[0] for k, v in parse_qs(p.query).items()}
    q.update(changes)
    return f"{p.path}?{urlencode(q)}"


def test_expired_and_tampered_signatures_are_refused(env: Env, ready: dict) -> None:
    c = env.client
    master = c.get(ready["playlist_url"], headers=env.alice.headers).text
    variant_url = uris(master)[0]
    seg_url = uris(c.get(variant_url).text)[0]
    for url in (seg_url, variant_url, ready["thumbnail_url"]):
        q = parse_qs(urlparse(url).query)
        sig = q["sig"][0]
        tampered = _with(url, sig=("0" if sig[0] != "0" else "1") + sig[1:])
        assert c.get(tampered).status_code == 403, url
        later = _with(url, expires=str(int(q["expires"][0]) + 3600))
        r = c.get(later)
        assert r.status_code == 403 and "bad signature" in r.json()["error"]
        assert c.get(urlparse(url).path).status_code in (401, 403)  # no signature at all
    # a path swapped to another key under a valid signature
    other = seg_url.replace("seg_00000", "seg_00001")
    assert c.get(other).status_code == 403
    # an expired, correctly signed URL
    media = env.services.catalog.get_media(ready["id"])
    key = urlparse(seg_url).path.removeprefix("/files/")
    secret = env.services.settings.store.secret or ""
    past = int(time.time()) - 5
    expired = signing.signed_url("", secret, "GET", key, past)
    r = c.get(expired)
    assert r.status_code == 403 and "expired" in r.json()["error"]
    assert media.published_prefix and key.startswith(media.published_prefix)
    # a variant playlist signature that expired
    rel = urlparse(variant_url).path.split("/hls/", 1)[1]
    sess = env.services.settings.web.session_secret or ""
    sig = signing.sign(sess, "GET", f"stream/{ready['id']}/{rel}", past)
    r = c.get(f"/api/stream/videos/{ready['id']}/hls/{rel}?expires={past}&sig={sig}")
    assert r.status_code == 403 and "expired" in r.json()["error"]


def test_signed_get_url_cannot_put(env: Env, ready: dict) -> None:
    seg_url = ready["thumbnail_url"]
    before = env.client.get(seg_url).content
    r = env.client.put(seg_url, content=b"overwritten")
    assert r.status_code == 403
    assert env.client.get(seg_url).content == before


def test_not_ready_video_has_no_playlist(env: Env, clip: Path) -> None:
    v = env.upload(env.alice, clip).json()
    assert v["playlist_url"] is None
    r = env.client.get(f"/api/stream/videos/{v['id']}/master.m3u8", headers=env.alice.headers)
    assert r.status_code == 404 and "not ready" in r.json()["error"]


def test_playlist_path_cannot_escape(env: Env, ready: dict) -> None:
    c, h = env.client, env.alice.headers
    for rel in ("../../../secret.key", "240p/../../x.m3u8", "240p/seg_00000.m4s"):
        assert c.get(f"/api/stream/videos/{ready['id']}/hls/{rel}", headers=h).status_code == 404
