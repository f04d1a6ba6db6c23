"""Web hardening: allowed hosts (also for the same-origin check), the pages' CSP, /docs and
/openapi.json from vendored assets for admins only (or off), /metrics behind a token, 4xx for
control characters anywhere, slow bodies cut off, private file modes."""

from __future__ import annotations

import socket
import stat
import time
from pathlib import Path

from fastapi.testclient import TestClient
from web_helpers import Env, LiveServer, account, make_settings

from ebbtide.services import open_services
from ebbtide.web.app import create_app
from ebbtide.web.hosts import host_allowed

ORIGIN = {"Origin": "http://127.0.0.1:8000"}


def test_host_header_must_be_allowed(env: Env) -> None:
    c = env.client
    assert c.get("/api/me", headers=env.alice.headers).status_code == 200
    r = c.get("/api/me", headers={**env.alice.headers, "Host": "evil.example:8000"})
    assert r.status_code == 400 and "allowed_hosts" in r.json()["hint"]
    assert c.get("/health", headers={"Host": "10.0.0.7"}).status_code == 200  # load balancer probes
    # DNS rebinding: Host and Origin both name the attacker; the login is refused
    r = c.post(
        "/login",
        data={"username": "alice", "password": env.alice.password},
        headers={"Host": "evil.example:8000", "Origin": "http://evil.example:8000"},
        follow_redirects=False,
    )
    assert r.status_code == 400


def test_configured_allowed_hosts(data_dir: Path) -> None:
    settings = make_settings(data_dir, web={"allowed_hosts": ["app.example", ".cdn.example"]})
    services = open_services(settings)
    try:
        alice = account(services, "alice")
        with TestClient(create_app(services), base_url="http://app.example") as c:
            assert c.get("/api/me", headers=alice.headers).status_code == 200
            assert c.get("/api/me", headers={**alice.headers, "Host": "x.cdn.example"}).status_code == 200
            assert c.get("/api/me", headers={**alice.headers, "Host": "127.0.0.1"}).status_code == 400
            # the same-origin check also wants an allowed origin, not only a matching one
            r = c.post(
                "/login",
                data={"username": "alice", "password": alice.password},
                headers={"Origin": "http://app.example"},
                follow_redirects=False,
            )
            assert r.status_code == 303 and "error" not in r.headers["location"]
    finally:
        services.close()
    assert host_allowed("[::1]:8000", frozenset({"::1"})) and not host_allowed(None, frozenset({"a"}))
    assert host_allowed("anything", frozenset({"*"}))


def test_pages_carry_a_content_security_policy(env: Env) -> None:
    csp = env.client.get("/login").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert "content-security-policy" not in env.client.get("/api/me", headers=env.alice.headers).headers


def test_docs_are_vendored_and_for_admins(env: Env) -> None:
    c = env.client
    for path in ("/docs", "/openapi.json"):
        assert c.get(path).status_code == 401
        assert c.get(path, headers=env.alice.headers).status_code == 403
        assert c.get(path, headers=env.admin.headers).status_code == 200
    page = c.get("/docs", headers=env.admin.headers).text
    assert "cdn" not in page.lower() and "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page
    assert c.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200
    assert "/api/gallery/uploads" in c.get("/openapi.json", headers=env.admin.headers).json()["paths"]


def test_docs_off_and_metrics_token(data_dir: Path) -> None:
    settings = make_settings(data_dir, web={"docs": "off", "metrics_token": "scrape-secret-1"})
    services = open_services(settings)
    try:
        admin = account(services, "root", admin=True)
        with TestClient(create_app(services), base_url="http://127.0.0.1:8000") as c:
            assert c.get("/docs", headers=admin.headers).status_code == 404
            assert c.get("/openapi.json", headers=admin.headers).status_code == 404
            assert c.get("/metrics").status_code == 401
            assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
            r = c.get("/metrics", headers={"Authorization": "Bearer scrape-secret-1"})
            assert r.status_code == 200 and "ebbtide_queue_visible" in r.text
    finally:
        services.close()


def test_control_characters_are_4xx_never_500(env: Env, clip: Path) -> None:
    c, h = env.client, env.alice.headers
    v = env.upload(env.alice, clip).json()
    for title in ("bad\x00title", "bell\x07", "esc\x1b[2J"):
        r = c.patch(f"/api/gallery/videos/{v['id']}", json={"title": title}, headers=h)
        assert r.status_code == 400, (title, r.text)
    assert c.get("/api/gallery/videos/abc%00def", headers=h).status_code == 400
    assert c.get("/api/gallery/videos?x=%00", headers=h).status_code == 400
    assert c.get("/login?next=/%0d%0aSet-Cookie:x").status_code == 400
    r = c.post("/api/gallery/uploads/sign", headers=h, json={"filename": "a\x00.mp4", "size": 10})
    assert r.status_code < 500
    with open(clip, "rb") as fh:
        r = c.post("/api/gallery/uploads", headers=h, files={"file": ("c.mp4", fh)}, data={"title": "t\x00"})
    assert r.status_code == 400
    assert c.get("/api/me", headers={"Authorization": "Bearer ebt_\x01"}).status_code in (400, 401)


def test_slow_request_body_is_cut_off(tmp_path: Path) -> None:
    server = LiveServer(tmp_path, {"web": {"body_timeout": 1}}).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(
                b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://127.0.0.1\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nusername=a"
            )
            started = time.monotonic()
            reply = s.recv(4096)
            waited = time.monotonic() - started
        assert reply.split(b"\r\n", 1)[0].split(b" ")[1] in (b"400", b"408"), reply[:200]
        assert waited < 8
        # a streamed upload that stalls gets 408 and leaves no temp file
        server.cli("users", "add", "alice", "--password", "alice-password-1")
        token = server.cli("users", "token", "alice").strip()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(
                b"POST /api/gallery/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                + f"Authorization: Bearer {token}\r\n".encode()
                + b"Content-Type: multipart/form-data; boundary=xx\r\nContent-Length: 100000\r\n\r\n"
                b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n0123'
            )
            reply = s.recv(4096)
        assert reply.split(b"\r\n", 1)[0].split(b" ")[1] == b"408", reply[:300]
        assert list((server.data_dir / "tmp" / "web").iterdir()) == []
    finally:
        server.stop()


def test_data_files_are_private(env: Env, clip: Path) -> None:
    env.upload(env.alice, clip)
    data = env.services.settings.data_path
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("catalog.db", "queue.db", "secret.key"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    stored = [p for p in (data / "store").rglob("*") if p.is_file()]
    assert stored and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in stored)
