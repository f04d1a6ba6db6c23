"""Gallery API on embedded defaults: uploads (direct, signed PUT, multipart), listing, owner scoping,
rename, delete. Real SQLite queue and catalog, real file store, real PyAV probe, real worker."""

from __future__ import annotations

import hashlib
from pathlib import Path

from web_helpers import Env


def test_direct_upload_is_probed_stored_and_queued(env: Env, clip: Path) -> None:
    r = env.upload(env.alice, clip, "My first", name="../../etc/My clip (1).mp4")
    assert r.status_code == 201, r.text
    v = r.json()
    assert v["title"] == "My first" and v["state"] == "queued" and v["duration"] > 1.5
    media = env.services.catalog.get_media(v["id"])
    # the filename was sanitised into a safe key under alice's folder
    assert media.source_key.startswith(f"users/{env.alice.user.id}/media/{v['id']}/source/")
    assert ".." not in media.source_key and " " not in media.source_key
    assert env.services.store.size(media.source_key) == clip.stat().st_size
    assert env.services.queue.stats().visible == 1
    # no temp file is left behind
    assert list((env.services.settings.data_path / "tmp" / "web").iterdir()) == []


def test_non_video_upload_gets_422_and_nothing_is_queued(env: Env, tmp_path: Path) -> None:
    junk = tmp_path / "notes.mp4"
    junk.write_text("this is a shopping list, not a video\n" * 100)
    r = env.upload(env.alice, junk)
    assert r.status_code == 422
    body = r.json()
    assert "notes.mp4 is not a video" in body["error"] and body["hint"]
    assert str(tmp_path) not in body["error"] and "upload-" not in body["error"]
    assert env.services.queue.stats().backlog == 0
    assert env.services.catalog.list_media() == []
    assert env.services.store.list("users/") == []


def test_upload_needs_multipart_and_a_file(env: Env) -> None:
    h = env.alice.headers
    assert env.client.post("/api/gallery/uploads", headers=h, content=b"raw").status_code == 400
    r = env.client.post("/api/gallery/uploads", headers=h, data={"title": "no file"})
    assert r.status_code == 400 and "file" in r.json()["error"]
    assert env.client.post("/api/gallery/uploads", files={"file": ("a.mp4", b"x")}).status_code == 401


def test_list_get_rename_only_mine(env: Env, clip: Path) -> None:
    a = env.upload(env.alice, clip, "alice's").json()
    b = env.upload(env.bob, clip, "bob's").json()
    mine = env.client.get("/api/gallery/videos", headers=env.alice.headers).json()
    assert [v["id"] for v in mine] == [a["id"]]
    assert (
        env.client.get(f"/api/gallery/videos/{a['id']}", headers=env.alice.headers).json()["title"]
        == "alice's"
    )
    # bob cannot see, rename or delete alice's video: 404, as if it did not exist
    for method, kwargs in (("GET", {}), ("PATCH", {"json": {"title": "mine now"}}), ("DELETE", {})):
        r = env.client.request(method, f"/api/gallery/videos/{a['id']}", headers=env.bob.headers, **kwargs)
        assert r.status_code == 404, (method, r.text)
    assert env.client.get("/api/gallery/videos/nope", headers=env.bob.headers).status_code == 404
    r = env.client.patch(
        f"/api/gallery/videos/{a['id']}", headers=env.alice.headers, json={"title": "Renamed"}
    )
    assert r.status_code == 200 and r.json()["title"] == "Renamed"
    assert env.services.catalog.get_media(a["id"]).title == "Renamed"
    assert (
        env.client.patch(
            f"/api/gallery/videos/{a['id']}", headers=env.alice.headers, json={"title": ""}
        ).status_code
        == 422
    )
    assert env.services.catalog.get_media(b["id"]).title == "bob's"


def test_delete_removes_objects_and_queued_job(env: Env, clip: Path) -> None:
    v = env.upload(env.alice, clip).json()
    media = env.services.catalog.get_media(v["id"])
    assert env.services.store.exists(media.source_key)
    r = env.client.delete(f"/api/gallery/videos/{v['id']}", headers=env.alice.headers)
    assert r.status_code == 204
    assert not env.services.store.exists(media.source_key)
    assert env.services.store.list(f"users/{env.alice.user.id}/") == []
    job = env.services.catalog.get_job(media.job_id or "")
    assert job.state in ("failed", "dead")
    assert env.client.get(f"/api/gallery/videos/{v['id']}", headers=env.alice.headers).status_code == 404
    # the worker skips the deleted job's message instead of transcoding it
    env.run_worker_once()
    assert env.services.queue.stats().backlog == 0
    assert env.services.store.list("users/") == []


def test_delete_ready_video_removes_hls(env: Env, clip: Path) -> None:
    v = env.ready_video(env.alice, clip)
    prefix = f"users/{env.alice.user.id}/media/{v['id']}/"
    assert any(o.key.endswith(".m3u8") for o in env.services.store.list(prefix))
    assert env.client.delete(f"/api/gallery/videos/{v['id']}", headers=env.alice.headers).status_code == 204
    assert env.services.store.list(prefix) == []


def _put(env: Env, url: str, data: bytes) -> tuple[int, str]:
    r = env.client.put(url.removeprefix("http://127.0.0.1:8000"), content=data)
    return r.status_code, r.headers.get("etag", "").strip('"')


def test_signed_put_then_complete(env: Env, clip: Path) -> None:
    h = env.alice.headers
    s = env.client.post(
        "/api/gallery/uploads/sign",
        headers=h,
        json={"filename": "Holiday 2024.MP4", "size": clip.stat().st_size},
    ).json()
    # a neutral inbox key: the user's file name (and extension) is not part of it
    assert s["url"] and s["key"].startswith(f"inbox/{env.alice.user.id}/") and s["key"].endswith("/upload")
    status, etag = _put(env, s["url"], clip.read_bytes())
    assert status == 200 and etag == hashlib.md5(clip.read_bytes()).hexdigest()
    # bob cannot complete alice's upload
    r = env.client.post("/api/gallery/uploads/complete", headers=env.bob.headers, json={"key": s["key"]})
    assert r.status_code == 404
    r = env.client.post(
        "/api/gallery/uploads/complete", headers=h, json={"key": s["key"], "title": "Holiday"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["title"] == "Holiday" and r.json()["state"] == "queued"
    assert env.services.queue.stats().visible == 1
    media = env.services.catalog.get_media(r.json()["id"])
    assert media.source_key.endswith("/source/original")  # an immutable key no signed URL names
    assert env.services.store.get_bytes(media.source_key) == clip.read_bytes()
    assert not env.services.store.exists(s["key"])
    # replaying the signed PUT after complete cannot swap what the worker transcodes
    status, _ = _put(env, s["url"], b"swapped after the probe")
    assert status == 409
    assert env.services.store.get_bytes(media.source_key) == clip.read_bytes()
    again = env.client.post("/api/gallery/uploads/complete", headers=h, json={"key": s["key"]})
    assert again.status_code == 400 and env.services.queue.stats().visible == 1


def test_signed_put_of_a_non_video_is_422_and_removed(env: Env) -> None:
    h = env.alice.headers
    s = env.client.post(
        "/api/gallery/uploads/sign", headers=h, json={"filename": "x.mov", "size": 2000}
    ).json()
    assert _put(env, s["url"], b"\x00\x01junk" * 200)[0] == 200
    assert env.services.store.exists(s["key"])
    r = env.client.post("/api/gallery/uploads/complete", headers=h, json={"key": s["key"]})
    assert r.status_code == 422 and "not a video" in r.json()["error"]
    assert not env.services.store.exists(s["key"])
    assert env.services.queue.stats().backlog == 0 and env.services.catalog.list_media() == []


def test_complete_without_upload_is_404(env: Env) -> None:
    h = env.alice.headers
    s = env.client.post("/api/gallery/uploads/sign", headers=h, json={"filename": "a.mp4", "size": 10}).json()
    assert (
        env.client.post("/api/gallery/uploads/complete", headers=h, json={"key": s["key"]}).status_code == 404
    )
    for key in (
        "../../etc/passwd",
        f"users/{env.bob.user.id}/media/{'0' * 32}/source/a.mp4",
        f"inbox/{env.bob.user.id}/{'0' * 32}/upload",
        f"users/{env.alice.user.id}/media/{'0' * 32}/source/original",
        "users/x",
    ):
        assert (
            env.client.post("/api/gallery/uploads/complete", headers=h, json={"key": key}).status_code == 404
        )


def test_multipart_parts_upload(data_dir: Path, clip: Path) -> None:
    """Above store.multipart_threshold the sign call hands out one signed URL per part."""
    from fastapi.testclient import TestClient
    from web_helpers import account, make_settings

    from ebbtide.services import open_services
    from ebbtide.web.app import create_app

    settings = make_settings(data_dir, store={"multipart_threshold": 50_000, "multipart_chunk": 64_000})
    services = open_services(settings)
    try:
        alice = account(services, "alice")
        with TestClient(create_app(services), base_url="http://127.0.0.1:8000") as c:
            data = clip.read_bytes()
            s = c.post(
                "/api/gallery/uploads/sign",
                headers=alice.headers,
                json={"filename": "big.mp4", "size": len(data)},
            ).json()
            assert s["upload_id"] and len(s["parts"]) == -(-len(data) // s["part_size"]) >= 2
            parts = []
            for p in s["parts"]:
                n = p["part_number"]
                chunk = data[(n - 1) * s["part_size"] : n * s["part_size"]]
                r = c.put(p["url"].removeprefix("http://127.0.0.1:8000"), content=chunk)
                assert r.status_code == 200
                parts.append({"part_number": n, "etag": r.headers["etag"]})
            r = c.post(
                "/api/gallery/uploads/complete",
                headers=alice.headers,
                json={"key": s["key"], "upload_id": s["upload_id"], "parts": parts},
            )
            assert r.status_code == 201, r.text
            source = services.catalog.get_media(r.json()["id"]).source_key
            assert services.store.get_bytes(source) == data and not services.store.exists(s["key"])
    finally:
        services.close()


def test_upload_limit_is_413(data_dir: Path, clip: Path) -> None:
    from fastapi.testclient import TestClient
    from web_helpers import account, make_settings

    from ebbtide.services import open_services
    from ebbtide.web.app import create_app

    services = open_services(make_settings(data_dir, web={"max_upload": 10_000}))
    try:
        alice = account(services, "alice")
        with TestClient(create_app(services), base_url="http://127.0.0.1:8000") as c, open(clip, "rb") as fh:
            r = c.post("/api/gallery/uploads", headers=alice.headers, files={"file": ("c.mp4", fh)})
            assert r.status_code == 413
            r = c.post(
                "/api/gallery/uploads/sign", headers=alice.headers, json={"filename": "c.mp4", "size": 20_000}
            )
            assert r.status_code == 413
        assert services.queue.stats().backlog == 0
    finally:
        services.close()
