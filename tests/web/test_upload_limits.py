"""Upload limits: the total across multipart parts, form-field count and size, per-user quotas,
neutral stored names, the sweep of abandoned uploads and the temp files a killed server left."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from web_helpers import Account, account, make_settings

from ebbtide.services import Services, open_services
from ebbtide.web.app import create_app
from ebbtide.web.sweeper import STALE_TEMP_S, sweep_once

BASE = "http://127.0.0.1:8000"


@pytest.fixture()
def app_with(data_dir: Path) -> Iterator[Any]:
    opened: list[Services] = []
    clients: list[TestClient] = []

    def make(**web: Any) -> tuple[Services, TestClient, Account]:
        store = web.pop("store", {})
        services = open_services(make_settings(data_dir, web=web, store=store))
        opened.append(services)
        client = TestClient(create_app(services), base_url=BASE).__enter__()
        clients.append(client)
        return services, client, account(services, "alice")

    yield make
    for client in clients:
        client.__exit__(None, None, None)
    for s in opened:
        s.close()


def test_multipart_total_is_capped_across_parts(app_with: Any) -> None:
    services, c, alice = app_with(
        max_upload=150_000, store={"multipart_threshold": 50_000, "multipart_chunk": 64_000}
    )
    s = c.post(
        "/api/gallery/uploads/sign", headers=alice.headers, json={"filename": "a.mp4", "size": 120_000}
    ).json()
    url = s["parts"][0]["url"].removeprefix(BASE)
    assert c.put(url, content=b"a" * 64_000).status_code == 200
    url2 = s["parts"][1]["url"].removeprefix(BASE)
    assert c.put(url2, content=b"b" * 64_000).status_code == 200
    # a third part (signed for the declared size or not) cannot take the total past the limit;
    # re-sending part 2 bigger is measured against the others only
    big = c.put(url2, content=b"b" * 90_000)
    assert big.status_code == 413
    assert c.put(url2, content=b"b" * 80_000).status_code == 200  # 64k + 80k = 144k ≤ 150k
    store = services.store
    assert store.upload_bytes(s["upload_id"]) == 144_000
    assert len(list((services.settings.data_path / "tmp" / "web").iterdir())) == 0


def test_total_is_checked_at_complete(app_with: Any) -> None:
    """A single signed PUT bigger than declared (S3 cannot cap it in flight): refused at complete."""
    services, c, alice = app_with(max_upload=10_000)
    s = c.post(
        "/api/gallery/uploads/sign", headers=alice.headers, json={"filename": "a.mp4", "size": 5_000}
    ).json()
    services.store.put_bytes(s["key"], b"x" * 12_000)  # as if PUT straight to a bucket
    r = c.post("/api/gallery/uploads/complete", headers=alice.headers, json={"key": s["key"]})
    assert r.status_code == 413 and not services.store.exists(s["key"])
    assert services.catalog.list_media() == []


def test_form_fields_are_limited_in_number_and_size(app_with: Any, clip: Path) -> None:
    services, c, alice = app_with(max_form_fields=3, max_form_field_size=1000)
    data = clip.read_bytes()
    many = {f"f{n}": "x" for n in range(4)}
    r = c.post("/api/gallery/uploads", headers=alice.headers, files={"file": ("c.mp4", data)}, data=many)
    assert r.status_code == 400 and "more than 3 fields" in r.json()["error"]
    r = c.post(
        "/api/gallery/uploads",
        headers=alice.headers,
        files={"file": ("c.mp4", data)},
        data={"title": "t" * 1001},
    )
    assert r.status_code == 400 and "longer than 1000" in r.json()["error"]
    r = c.post(
        "/api/gallery/uploads", headers=alice.headers, files={"file": ("c.mp4", data)}, data={"title": "ok"}
    )
    assert r.status_code == 201
    assert list((services.settings.data_path / "tmp" / "web").iterdir()) == []


def test_quotas_in_videos_and_bytes(app_with: Any, clip: Path) -> None:
    size = clip.stat().st_size
    services, c, alice = app_with(quota_videos=2, quota_bytes=size * 2 + 100)
    def up() -> Any:
        files = {"file": ("c.mp4", clip.read_bytes())}
        return c.post("/api/gallery/uploads", headers=alice.headers, files=files)

    assert up().status_code == 201
    r = c.post(
        "/api/gallery/uploads/sign", headers=alice.headers, json={"filename": "a.mp4", "size": size * 2}
    )
    assert r.status_code == 413 and "left" in r.json()["error"]
    assert up().status_code == 201
    r = up()
    assert r.status_code == 413 and "limit is 2" in r.json()["error"]
    bob = account(services, "bob")
    assert (
        c.post(
            "/api/gallery/uploads", headers=bob.headers, files={"file": ("c.mp4", clip.read_bytes())}
        ).status_code
        == 201
    )


def test_uploads_are_stored_under_a_neutral_name(app_with: Any, clip: Path) -> None:
    services, c, alice = app_with()
    r = c.post(
        "/api/gallery/uploads", headers=alice.headers, files={"file": ("alice.m3u8", clip.read_bytes())}
    )
    assert r.status_code == 201
    key = services.catalog.get_media(r.json()["id"]).source_key
    assert key.endswith("/source/original") and "m3u8" not in key


def _age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_abandoned_signed_uploads_are_swept(app_with: Any) -> None:
    services, c, alice = app_with(
        upload_ttl=3600, store={"multipart_threshold": 50_000, "multipart_chunk": 64_000}
    )
    single = c.post(
        "/api/gallery/uploads/sign", headers=alice.headers, json={"filename": "a", "size": 10}
    ).json()
    assert c.put(single["url"].removeprefix(BASE), content=b"0123456789").status_code == 200
    multi = c.post(
        "/api/gallery/uploads/sign", headers=alice.headers, json={"filename": "b", "size": 100_000}
    ).json()
    assert c.put(multi["parts"][0]["url"].removeprefix(BASE), content=b"p" * 64_000).status_code == 200
    fresh = c.post(
        "/api/gallery/uploads/sign", headers=alice.headers, json={"filename": "c", "size": 10}
    ).json()
    assert c.put(fresh["url"].removeprefix(BASE), content=b"fresh-data").status_code == 200
    root = services.settings.data_path / "store"
    _age(root / single["key"], 7200)
    for p in (root / ".uploads" / multi["upload_id"]).iterdir():
        _age(p, 7200)
    assert sweep_once(services) == 2
    assert not services.store.exists(single["key"]) and not (root / ".uploads" / multi["upload_id"]).exists()
    assert services.store.exists(fresh["key"])
    # a swept upload cannot be completed any more
    r = c.post("/api/gallery/uploads/complete", headers=alice.headers, json={"key": single["key"]})
    assert r.status_code == 404


def test_temp_files_of_a_killed_server_are_removed_at_start(data_dir: Path) -> None:
    settings = make_settings(data_dir)
    spool = settings.data_path / "tmp" / "web"
    spool.mkdir(parents=True)
    dead = [spool / "upload-dead", spool / ".put-dead", spool / "tmpdir-dead"]
    dead[0].write_bytes(b"x" * 1000)
    dead[1].write_bytes(b"y")
    dead[2].mkdir()
    (dead[2] / "original").write_bytes(b"z")
    live = spool / "upload-live"
    live.write_bytes(b"still arriving")
    half = settings.data_path / "store" / "users" / "u" / ".ebbtide-tmp-dead"
    half.parent.mkdir(parents=True)
    half.write_bytes(b"half an object")
    for p in (*dead, half):
        _age(p, STALE_TEMP_S + 60)
    services = open_services(settings)
    try:
        with TestClient(create_app(services), base_url=BASE):
            deadline = time.monotonic() + 10
            while any(p.exists() for p in (*dead, half)) and time.monotonic() < deadline:
                time.sleep(0.05)
        assert not any(p.exists() for p in (*dead, half))
        assert live.exists()
    finally:
        services.close()
