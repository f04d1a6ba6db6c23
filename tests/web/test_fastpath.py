"""The raw-ASGI fast path for viewers (web/fastpath.py): it answers signed segments and cached
signed playlists exactly as the routes would, and hands everything else to the routes."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import m3u8
import pytest
from fastapi.testclient import TestClient
from web_helpers import Env

from ebbtide.web.app import ALL_PARTS
from ebbtide.web.fastpath import FastPath
from ebbtide.web.playcache import PlaylistCache

# headers the outer middleware (security headers) or the server add; not the fast path's business
OUTER = {"date", "server", "referrer-policy", "x-content-type-options", "x-frame-options"}


@pytest.fixture()
def ready(env: Env, clip: Path) -> dict:
    return env.ready_video(env.alice, clip)


class Recorder:
    """The inner app: records that the fast path handed a request on, and answers 599."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 599, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _variant(env: Env, ready: dict) -> tuple[str, list[str]]:
    master = m3u8.loads(env.client.get(ready["playlist_url"], headers=env.alice.headers).text)
    url = master.playlists[0].uri
    text = env.client.get(url).text
    return url, [line for line in text.splitlines() if line and not line.startswith("#")]


@pytest.fixture()
def routes_only(env: Env) -> Iterator[TestClient]:
    """The same services behind an app without the fast path: what the routes answer."""
    from ebbtide.web.app import create_app

    services = env.services
    plain = services.settings.model_copy(
        update={"web": services.settings.web.model_copy(update={"fast_path": False})}
    )
    app = create_app(dataclasses.replace(services, settings=plain))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        yield client


def _same(a: Any, b: Any) -> None:
    assert a.status_code == b.status_code and a.content == b.content
    ha = {k: v for k, v in a.headers.items() if k not in OUTER}
    hb = {k: v for k, v in b.headers.items() if k not in OUTER}
    assert ha == hb


def test_fast_path_answers_signed_segments_as_the_route_does(
    env: Env, ready: dict, routes_only: TestClient
) -> None:
    _, segs = _variant(env, ready)
    inner = Recorder()
    fast = TestClient(FastPath(inner, env.services, frozenset(ALL_PARTS), PlaylistCache()))
    seg = segs[0]
    got = fast.get(seg)
    assert got.status_code == 200 and not inner.paths  # answered without the routes
    _same(got, routes_only.get(seg))
    assert got.headers["content-length"] == str(len(got.content))
    head = fast.head(seg)
    assert head.status_code == 200 and head.content == b"" and not inner.paths
    _same(head, routes_only.head(seg))
    assert head.headers["content-length"] == str(len(got.content))
    etag = got.headers["etag"]
    nm = fast.get(seg, headers={"If-None-Match": etag})
    assert nm.status_code == 304 and nm.content == b"" and not inner.paths
    _same(nm, routes_only.get(seg, headers={"If-None-Match": etag}))
    # the owner check: a caller whose credentials name the owner (or nobody) is served here
    assert fast.get(seg, headers=env.alice.headers).status_code == 200 and not inner.paths


@pytest.mark.parametrize(
    "change",
    ["no signature", "extra parameter", "bad signature", "range", "other user", "missing file"],
)
def test_anything_else_goes_to_the_routes(
    env: Env, ready: dict, routes_only: TestClient, change: str
) -> None:
    _, segs = _variant(env, ready)
    seg, headers = segs[0], {}
    if change == "no signature":
        seg = urlsplit(seg).path
    elif change == "extra parameter":
        seg += "&cachebuster=1"
    elif change == "bad signature":
        seg = seg.replace("sig=", "sig=0")
    elif change == "range":
        headers = {"Range": "bytes=0-9"}
    elif change == "other user":
        headers = env.bob.headers
    else:
        key = urlsplit(seg).path.removeprefix("/files/")
        env.services.store.path_for(key).unlink()
    inner = Recorder()
    fast = TestClient(FastPath(inner, env.services, frozenset(ALL_PARTS), PlaylistCache()))
    for _ in range(2):  # the second time with a remembered caller
        assert fast.get(seg, headers=headers).status_code == 599
    assert len(inner.paths) == 2
    expected = {"range": 206, "other user": 404, "missing file": 404}.get(change, 403)
    assert env.client.get(seg, headers=headers).status_code == expected  # and the routes answer
    assert routes_only.get(seg, headers=headers).status_code == expected


def test_signed_playlists_come_from_the_cache_for_a_few_seconds_only(
    env: Env, ready: dict, routes_only: TestClient
) -> None:
    cache: PlaylistCache = env.client.app.state.playlists  # type: ignore[attr-defined]
    cache.fresh_for = 1.0
    url, _ = _variant(env, ready)  # rendered by the route, kept in the cache
    inner = Recorder()
    fast = TestClient(FastPath(inner, env.services, frozenset(ALL_PARTS), cache))
    hit = fast.get(url)
    assert hit.status_code == 200 and not inner.paths
    _same(hit, routes_only.get(url))
    assert fast.get(url + "&x=1").status_code == 599  # unsigned extra parameter: the route refuses
    assert fast.get(url, headers=env.bob.headers).status_code == 599  # credentials: the route decides
    # deleted: within fresh_for the cached text may still be handed out, never after
    assert (
        env.client.delete(f"/api/gallery/videos/{ready['id']}", headers=env.alice.headers).status_code == 204
    )
    time.sleep(1.1)
    assert fast.get(url).status_code == 599
    assert env.client.get(url).status_code == 404
