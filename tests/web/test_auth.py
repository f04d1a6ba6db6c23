"""Auth: bearer tokens, session login for pages, same-origin writes, admins, OIDC via a local JWKS.

No real identity provider exists here: the OIDC test serves a JWKS from a tiny http.server in a
thread with an RSA key generated in the test, which is exactly what PyJWKClient fetches from Cognito.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from web_helpers import Env, account, make_settings

from ebbtide.services import open_services
from ebbtide.web.app import create_app
from ebbtide.web.bootstrap import ensure_admin

ORIGIN = {"Origin": "http://127.0.0.1:8000"}


def login(env: Env, name: str, password: str, headers: dict[str, str] | None = None) -> Any:
    return env.client.post(
        "/login",
        data={"username": name, "password": password, "next": "/upload"},
        headers=ORIGIN if headers is None else headers,
        follow_redirects=False,
    )


def test_api_needs_credentials(env: Env) -> None:
    c = env.client
    r = c.get("/api/gallery/videos")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer" and r.json()["hint"]
    assert c.get("/api/gallery/videos", headers={"Authorization": "Bearer ebt_nope"}).status_code == 401
    assert c.get("/api/gallery/videos", headers={"Authorization": "Basic eDp5"}).status_code == 401
    assert c.get("/api/me", headers=env.alice.headers).json()["name"] == "alice"
    env.services.catalog.revoke_token(env.alice.token)
    assert c.get("/api/me", headers=env.alice.headers).status_code == 401


def test_session_login_pages_and_logout(env: Env) -> None:
    c = env.client
    r = c.get("/", headers={"Accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert "Log in" in c.get("/login").text
    bad = login(env, "alice", "wrong")
    assert bad.status_code == 303 and "error=1" in bad.headers["location"]
    ok = login(env, "alice", env.alice.password)
    assert ok.status_code == 303 and ok.headers["location"] == "/upload"
    cookie = ok.cookies.get("ebbtide_session")
    assert cookie and "httponly" in ok.headers["set-cookie"].lower()
    c.cookies.set("ebbtide_session", cookie)
    for page in ("/", "/upload"):
        assert c.get(page).status_code == 200
    assert c.get("/api/me").json()["name"] == "alice"
    assert "Upload a video" in c.get("/upload").text
    assert c.get("/fleet").status_code == 403  # not an admin
    assert c.get("/watch/" + "0" * 32).status_code == 404
    assert c.get("/static/vendor/hls.min.js").status_code == 200
    out = c.post("/logout", headers=ORIGIN, follow_redirects=False)
    assert out.status_code == 303
    c.cookies.clear()
    assert c.get("/api/me").status_code == 401


def test_tampered_session_cookie_is_ignored(env: Env) -> None:
    cookie = login(env, "alice", env.alice.password).cookies["ebbtide_session"]
    env.client.cookies.set("ebbtide_session", cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB"))
    assert env.client.get("/api/me").status_code == 401


def test_csrf_cross_origin_writes_are_refused(env: Env, clip: Path) -> None:
    c = env.client
    assert (
        login(env, "alice", env.alice.password, headers={"Origin": "https://evil.example"}).status_code == 403
    )
    assert login(env, "alice", env.alice.password, headers={}).status_code == 403
    cookie = login(env, "alice", env.alice.password).cookies["ebbtide_session"]
    c.cookies.set("ebbtide_session", cookie)
    v = env.upload(env.alice, clip).json()  # bearer: fine
    evil = {"Origin": "https://evil.example"}
    r = c.patch(f"/api/gallery/videos/{v['id']}", json={"title": "pwned"}, headers=evil)
    assert r.status_code == 403
    assert c.delete(f"/api/gallery/videos/{v['id']}", headers=evil).status_code == 403
    assert env.services.catalog.get_media(v["id"]).title == "clip"
    r = c.patch(f"/api/gallery/videos/{v['id']}", json={"title": "mine"}, headers=ORIGIN)
    assert r.status_code == 200 and r.json()["title"] == "mine"


def test_admin_and_fleet_access(env: Env) -> None:
    c = env.client
    assert c.get("/api/fleet/queue", headers=env.alice.headers).status_code == 403
    assert c.get("/api/fleet/queue", headers=env.admin.headers).status_code == 200
    cookie = login(env, "root", env.admin.password).cookies["ebbtide_session"]
    c.cookies.set("ebbtide_session", cookie)
    assert "Decisions" in c.get("/fleet").text


def test_ensure_admin_creates_once(env: Env) -> None:
    name, pw = ensure_admin(env.services.catalog)
    assert name == "admin" and pw and len(pw) >= 12
    user = env.services.catalog.check_password("admin", pw)
    assert user is not None and user.is_admin
    assert ensure_admin(env.services.catalog) == ("admin", None)


class _Jwks:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": "test-key", "use": "sig", "alg": "RS256"})
        body = json.dumps({"keys": [jwk]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token(self, key: Any = None, **claims: Any) -> str:
        base = {"sub": "u-123", "iss": "https://idp.test", "aud": "ebbtide-web", "exp": time.time() + 300}
        base.update(claims)
        return jwt.encode(base, key or self.key, algorithm="RS256", headers={"kid": "test-key"})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def jwks() -> Iterator[_Jwks]:
    j = _Jwks()
    yield j
    j.close()


def test_oidc_bearer_tokens(data_dir: Path, jwks: _Jwks) -> None:
    oidc = {
        "jwks_url": jwks.url,
        "issuer": "https://idp.test",
        "audience": "ebbtide-web",
        "admin_group": "ops",
    }
    services = open_services(make_settings(data_dir, web={"oidc": oidc}))
    try:
        with TestClient(create_app(services), base_url="http://127.0.0.1:8000") as c:

            def me(token: str) -> Any:
                return c.get("/api/me", headers={"Authorization": f"Bearer {token}"})

            r = me(jwks.token(sub="sub-carol", **{"cognito:username": "carol"}))
            assert r.status_code == 200 and r.json()["name"] == "oidc-carol" and not r.json()["is_admin"]
            carol = r.json()["id"]
            assert me(jwks.token(sub="sub-carol", **{"cognito:username": "carol"})).json()["id"] == carol
            # the account is (issuer, sub): carol renaming herself keeps it ...
            assert me(jwks.token(sub="sub-carol", preferred_username="caroline")).json()["id"] == carol
            # ... and someone else taking the name "carol" gets their own, never hers
            mallory = me(jwks.token(sub="sub-mallory", **{"cognito:username": "carol"})).json()
            assert mallory["id"] != carol and mallory["name"] != "oidc-carol"
            admin = me(jwks.token(sub="sub-dave", **{"cognito:username": "dave", "cognito:groups": ["ops"]}))
            assert admin.json()["is_admin"] is True
            other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            refused = [
                jwks.token(key=other_key),  # signed by someone else
                jwks.token(exp=time.time() - 10),  # expired
                jwks.token(iss="https://elsewhere"),  # wrong issuer
                jwks.token(aud="another-app"),  # wrong audience
                "not.a.jwt",
            ]
            for t in refused:
                assert me(t).status_code == 401, t
            # a Cognito access token names the client in client_id instead of aud
            access = jwks.token(
                sub="sub-erin", aud=None, client_id="ebbtide-web", token_use="access", username="erin"
            )
            assert me(access).status_code == 200
            # local tokens still work next to OIDC
            alice = account(services, "alice")
            assert c.get("/api/me", headers=alice.headers).json()["name"] == "alice"
    finally:
        services.close()


def test_oidc_needs_an_audience(data_dir: Path, jwks: _Jwks) -> None:
    from ebbtide.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        make_settings(data_dir, web={"oidc": {"jwks_url": jwks.url, "issuer": "https://idp.test"}})
    assert "audience" in str(e.value)


def test_oidc_token_without_audience_is_refused(data_dir: Path, jwks: _Jwks) -> None:
    oidc = {"jwks_url": jwks.url, "audience": "ebbtide-web"}
    services = open_services(make_settings(data_dir, web={"oidc": oidc}))
    try:
        with TestClient(create_app(services), base_url="http://127.0.0.1:8000") as c:
            for token in (jwks.token(aud=None), jwks.token(aud=["other"]), jwks.token(iss="")):
                assert c.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
            ok = jwks.token(aud=["other", "ebbtide-web"])
            assert c.get("/api/me", headers={"Authorization": f"Bearer {ok}"}).status_code == 200
    finally:
        services.close()
