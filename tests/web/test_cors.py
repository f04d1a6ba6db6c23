"""CORS on the stream and file routes, from configured origins only, preflight included."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from web_helpers import Env, account, make_settings

from ebbtide.services import open_services
from ebbtide.web.app import create_app
from ebbtide.web.cors import allowed_origin

PLAYER = "http://player.example:9000"


def test_allowed_origin_is_pure() -> None:
    assert allowed_origin(PLAYER, (PLAYER,)) == PLAYER
    assert allowed_origin(PLAYER + "/", (PLAYER,)) == PLAYER + "/"
    assert allowed_origin("http://evil.example", (PLAYER,)) is None
    assert allowed_origin("http://any.example", ("*",)) == "*"
    assert allowed_origin(None, ("*",)) is None
    assert allowed_origin(PLAYER, ()) is None


def test_stream_and_files_answer_configured_origins(data_dir: Path, clip: Path) -> None:
    services = open_services(make_settings(data_dir, cors={"origins": [PLAYER]}))
    with TestClient(create_app(services), base_url="http://127.0.0.1:8000") as client:
        env = Env(services, client, account(services, "alice"), account(services, "bob"),
                  account(services, "root", admin=True))  # fmt: skip
        video = env.ready_video(env.alice, clip)
        master = f"/api/stream/videos/{video['id']}/master.m3u8"
        pre = client.options(master, headers={"Origin": PLAYER, "Access-Control-Request-Method": "GET",
                                              "Access-Control-Request-Headers": "authorization"})  # fmt: skip
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == PLAYER
        assert "authorization" in pre.headers["access-control-allow-headers"].lower()
        bad = client.options(master, headers={"Origin": "http://evil.example",
                                              "Access-Control-Request-Method": "GET"})  # fmt: skip
        assert bad.status_code == 403 and "access-control-allow-origin" not in bad.headers

        r = client.get(master, headers={**env.alice.headers, "Origin": PLAYER})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == PLAYER
        assert r.headers["content-type"].startswith("application/vnd.apple.mpegurl")
        variant = next(line for line in r.text.splitlines() if line and not line.startswith("#"))
        v = client.get(variant, headers={"Origin": PLAYER})
        assert v.status_code == 200 and v.headers["access-control-allow-origin"] == PLAYER
        segment = next(line for line in v.text.splitlines() if line and not line.startswith("#"))
        seg = client.get(segment, headers={"Origin": PLAYER})  # a signed /files/ URL
        assert seg.status_code == 200 and seg.headers["access-control-allow-origin"] == PLAYER
        assert seg.headers["content-type"] in ("video/mp4", "video/mp2t")
        r = client.get(master, headers={**env.alice.headers, "Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in r.headers
        g = client.get("/api/gallery/videos", headers={**env.alice.headers, "Origin": PLAYER})
        assert "access-control-allow-origin" not in g.headers  # the gallery API stays same-origin
    services.close()
