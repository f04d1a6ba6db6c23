"""Fleet API, /metrics, /health and app parts, against the real catalog and queue.

Decisions and heartbeats are written through the real Catalog API, as the controller and workers
write them; the health failure case stops a real moto server under a real SQS queue and S3 store.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from web_helpers import Env, account, free_port, make_settings

from ebbtide.catalog.states import WorkerState
from ebbtide.errors import ConfigError
from ebbtide.services import open_services
from ebbtide.web.app import create_app


def _fleet_state(env: Env) -> None:
    cat = env.services.catalog
    cat.record_decision(
        "local",
        "deadline",
        desired=2,
        running=1,
        busy=1,
        launched=1,
        retired=0,
        reason="3 jobs waiting; local finishes them in 40 s",
    )
    cat.heartbeat("w-busy", "local", WorkerState.BUSY, job_id=None, progress=0.5, host="h", pid=11)
    cat.heartbeat("w-idle", "local", WorkerState.IDLE, host="h", pid=12, price_per_hour=0.5)


def test_fleet_endpoints(env: Env, clip: Path) -> None:
    env.upload(env.alice, clip)
    _fleet_state(env)
    c, h = env.client, env.admin.headers
    q = c.get("/api/fleet/queue", headers=h).json()
    assert q["visible"] == 1 and q["backlog"] == 1 and q["dead"] == 0
    pools = {p["name"]: p for p in c.get("/api/fleet/pools", headers=h).json()}
    local = pools["local"]
    assert (local["desired"], local["running"], local["busy"], local["idle"]) == (2, 2, 1, 1)
    assert "3 jobs waiting" in local["last_reason"]
    workers = {w["id"]: w for w in c.get("/api/fleet/workers", headers=h).json()}
    assert workers["w-busy"]["state"] == "busy" and workers["w-idle"]["state"] == "idle"
    d = c.get("/api/fleet/decisions?limit=5", headers=h).json()
    assert d[0]["pool"] == "local" and d[0]["desired"] == 2 and d[0]["reason"]
    assert c.get("/api/fleet/decisions?limit=0", headers=h).status_code == 422
    cost = c.get("/api/fleet/cost", headers=h).json()
    assert cost["total"] >= 0.5 * 60 / 3600 - 1e-9  # 60 s minimum at $0.50/h
    c.app.state.history.sample()  # the background sampler ran at start, before this state existed
    hist = c.get("/api/fleet/history", headers=h).json()
    assert hist["samples"][-1]["visible"] == 1 and hist["samples"][-1]["workers"] == 2
    assert hist["decisions"][0]["reason"]
    for path in ("queue", "pools", "workers", "decisions", "cost", "history"):
        assert c.get(f"/api/fleet/{path}", headers=env.bob.headers).status_code == 403
        assert c.get(f"/api/fleet/{path}").status_code == 401


def test_worker_shows_its_job(env: Env, clip: Path) -> None:
    v = env.ready_video(env.alice, clip)
    workers = env.client.get("/api/fleet/workers?include_gone=true", headers=env.admin.headers).json()
    assert any(w["jobs_done"] >= 1 and w["pool"] == "local" for w in workers), workers
    job_id = env.services.catalog.get_media(v["id"]).job_id
    assert env.services.catalog.get_job(job_id or "").state == "succeeded"


def test_metrics(env: Env, clip: Path) -> None:
    env.upload(env.alice, clip)
    _fleet_state(env)
    r = env.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(r.text)
        for s in fam.samples
    }
    assert samples[("ebbtide_queue_visible", ())] == 1
    assert samples[("ebbtide_queue_in_flight", ())] == 0
    assert samples[("ebbtide_queue_dead", ())] == 0
    assert samples[("ebbtide_workers", (("pool", "local"), ("state", "busy")))] == 1
    assert samples[("ebbtide_workers", (("pool", "local"), ("state", "idle")))] == 1
    assert samples[("ebbtide_jobs", (("state", "queued"),))] == 1
    assert samples[("ebbtide_cost_dollars", (("pool", "local"),))] > 0


def test_metrics_transcode_speed_after_a_job(env: Env, clip: Path) -> None:
    env.ready_video(env.alice, clip)
    text = env.client.get("/metrics").text
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert fams["ebbtide_transcode_speed"].samples[0].value > 0
    assert any(s.labels == {"state": "succeeded"} and s.value == 1 for s in fams["ebbtide_jobs"].samples)


def test_health_ok(env: Env) -> None:
    r = env.client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert set(r.json()["checks"]) == {"queue", "catalog", "store"}


def test_health_503_names_what_failed(data_dir: Path) -> None:
    """SQS queue and S3 store on a moto server we stop: /health answers 503 naming both."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    name = f"web-{uuid.uuid4().hex[:8]}"
    settings = make_settings(
        data_dir,
        queue={"url": f"sqs://{name}", "endpoint_url": endpoint, "region": "us-east-1", "wait": 0},
        store={"url": f"s3://{name}", "endpoint_url": endpoint, "region": "us-east-1"},
    )
    services = open_services(settings)
    try:
        with TestClient(create_app(services), base_url="http://127.0.0.1:8000") as c:
            assert c.get("/health").status_code == 200
            moto.stop()
            r = c.get("/health")
            assert r.status_code == 503
            assert r.json()["failed"] == ["queue", "store"] and r.json()["checks"]["catalog"]["ok"]
    finally:
        services.close()


def test_parts_split_the_app(env: Env) -> None:
    stream_only = create_app(env.services, parts={"stream"})
    with TestClient(stream_only, base_url="http://127.0.0.1:8000") as c:
        h = env.alice.headers
        assert c.get("/health").status_code == 200
        assert c.get("/api/gallery/videos", headers=h).status_code == 404
        assert c.get("/api/fleet/queue", headers=env.admin.headers).status_code == 404
        assert c.get("/api/stream/videos/x/master.m3u8", headers=h).status_code == 404
        assert c.get("/login").status_code == 404
        paths = set(c.get("/openapi.json", headers=env.admin.headers).json()["paths"])
        assert any(p.startswith("/api/stream/") for p in paths)
        assert not any(p.startswith("/api/gallery/") for p in paths)
    app = create_app(env.services, parts={"gallery", "pages"})
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        assert c.get("/api/gallery/videos", headers=env.alice.headers).status_code == 200
        assert c.get("/login").status_code == 200
    with pytest.raises(ConfigError):
        create_app(env.services, parts={"galery"})


def test_streaming_from_s3_uses_presigned_urls(data_dir: Path, clip: Path, moto_endpoint: str) -> None:
    """With an S3 store the playlists point segments straight at the bucket (presigned, via moto)."""
    from ebbtide.worker.runtime import Worker

    bucket = f"web-{uuid.uuid4().hex[:8]}"
    settings = make_settings(
        data_dir, store={"url": f"s3://{bucket}", "endpoint_url": moto_endpoint, "region": "us-east-1"}
    )
    services = open_services(settings)
    try:
        alice = account(services, "alice")
        bob = account(services, "bob")
        with TestClient(create_app(services), base_url="http://127.0.0.1:8000") as c, open(clip, "rb") as fh:
            v = c.post("/api/gallery/uploads", headers=alice.headers, files={"file": ("c.mp4", fh)}).json()
            assert Worker(services, pool="local", once=True, idle_exit=3, install_signals=False).run() == 0
            master = c.get(f"/api/stream/videos/{v['id']}/master.m3u8", headers=alice.headers)
            assert master.status_code == 200
            variant_url = next(x for x in master.text.splitlines() if x and not x.startswith("#"))
            variant = c.get(variant_url).text
            seg = next(x for x in variant.splitlines() if x and not x.startswith("#"))
            assert seg.startswith(moto_endpoint) and "X-Amz-Signature" in seg
            r = httpx.get(seg)
            assert r.status_code == 200 and len(r.content) > 1000
            assert c.get(f"/api/stream/videos/{v['id']}/master.m3u8", headers=bob.headers).status_code == 404
            # signed PUT + complete against S3 presigned URLs
            s = c.post(
                "/api/gallery/uploads/sign",
                headers=alice.headers,
                json={"filename": "b.mp4", "size": clip.stat().st_size},
            ).json()
            assert s["url"].startswith(moto_endpoint)
            assert (
                httpx.put(
                    s["url"], content=clip.read_bytes(), headers={"Content-Type": "video/mp4"}
                ).status_code
                == 200
            )
            done = c.post("/api/gallery/uploads/complete", headers=alice.headers, json={"key": s["key"]})
            assert done.status_code == 201, done.text
    finally:
        services.close()
