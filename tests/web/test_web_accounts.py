"""Accounts over HTTP: login throttling (429 + Retry-After), the login audit log, logout and
password change and disable revoking cookies, token expiry and revocation, the CLI for all of it."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

import pytest
from web_helpers import EBBTIDE, Env, LiveServer

from ebbtide.clock import VirtualClock
from ebbtide.web.throttle import LoginThrottle

ORIGIN = {"Origin": "http://127.0.0.1:8000"}


def _login(env: Env, name: str, password: str, address_headers: dict[str, str] | None = None) -> int:
    r = env.client.post(
        "/login",
        data={"username": name, "password": password, "next": "/"},
        headers=ORIGIN | (address_headers or {}),
        follow_redirects=False,
    )
    if r.status_code == 303 and "error" not in r.headers["location"]:
        return 200  # the client keeps the cookie
    return 401 if r.status_code == 303 else r.status_code


def test_login_is_throttled_per_account_with_retry_after(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    clock = VirtualClock(start=1_000.0)
    env.client.app.state.login_throttle = LoginThrottle(3, 100, 60.0, clock)  # type: ignore[attr-defined]
    caplog.set_level(logging.INFO)
    for _ in range(3):
        assert _login(env, "alice", "wrong-guess-123") == 401
    r = env.client.post(
        "/login",
        data={"username": "alice", "password": env.alice.password},
        headers=ORIGIN,
        follow_redirects=False,
    )
    # even the right password waits: a guesser cannot tell when they hit it
    assert r.status_code == 429 and int(r.headers["retry-after"]) == 60 and r.json()["hint"]
    assert _login(env, "bob", env.bob.password) == 200  # another account is not locked out
    clock.advance(30)
    r = env.client.post("/login", data={"username": "ALICE", "password": "x"}, headers=ORIGIN)
    assert r.status_code == 429 and int(r.headers["retry-after"]) == 30  # names compare case-free
    clock.advance(31)
    assert _login(env, "alice", env.alice.password) == 200
    # the audit log names who and from where, never a password
    failed = [r for r in caplog.records if r.getMessage() == "login failed"]
    ok = [r for r in caplog.records if r.getMessage() == "login succeeded"]
    assert len(failed) == 3 and failed[0].user == "alice" and failed[0].client  # type: ignore[attr-defined]
    assert {r.user for r in ok} == {"alice", "bob"}  # type: ignore[attr-defined]
    assert any(r.getMessage() == "login throttled" for r in caplog.records)
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in ("wrong-guess-123", env.alice.password, env.bob.password):
        assert secret not in text


def test_login_is_throttled_per_client_address(env: Env) -> None:
    env.client.app.state.login_throttle = LoginThrottle(100, 4, 60.0)  # type: ignore[attr-defined]
    for n in range(4):  # one address spraying many names
        assert _login(env, f"user{n}", "password-guess") == 401
    r = env.client.post(
        "/login",
        data={"username": "bob", "password": env.bob.password},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 59


def test_nul_and_control_characters_in_a_login_are_a_plain_failure(env: Env) -> None:
    for name in ("ali\x00ce", "alice\x1b[31m", "\x7f"):
        assert _login(env, name, env.alice.password) == 401


def test_logout_revokes_the_cookie_server_side(env: Env) -> None:
    assert _login(env, "alice", env.alice.password) == 200
    cookie = env.client.cookies["ebbtide_session"]
    assert env.client.get("/api/me").json()["name"] == "alice"
    assert env.client.post("/logout", headers=ORIGIN, follow_redirects=False).status_code == 303
    env.client.cookies.clear()
    env.client.cookies.set("ebbtide_session", cookie)  # a copy kept by an attacker
    assert env.client.get("/api/me").status_code == 401


def test_password_change_and_disable_revoke_cookies_and_tokens(env: Env) -> None:
    cat = env.services.catalog
    assert _login(env, "alice", env.alice.password) == 200
    cat.set_password(env.alice.user.id, "a-brand-new-password")
    assert env.client.get("/api/me").status_code == 401
    env.client.cookies.clear()
    assert _login(env, "alice", env.alice.password) == 401
    assert _login(env, "alice", "a-brand-new-password") == 200
    cat.set_disabled(env.alice.user.id)
    assert env.client.get("/api/me").status_code == 401
    assert env.client.get("/api/me", headers=env.alice.headers).status_code == 401
    env.client.cookies.clear()
    assert _login(env, "alice", "a-brand-new-password") == 401
    assert env.client.get("/api/me", headers=env.bob.headers).status_code == 200


def test_tokens_expire_and_are_revoked_by_id(env: Env) -> None:
    cat = env.services.catalog
    short = cat.create_token(env.alice.user.id, "ci", expires_at=time.time() + 1.0)
    assert env.client.get("/api/me", headers={"Authorization": f"Bearer {short}"}).status_code == 200
    time.sleep(1.2)
    assert env.client.get("/api/me", headers={"Authorization": f"Bearer {short}"}).status_code == 401
    listed = {t.label: t for t in cat.list_tokens(env.alice.user.id)}
    cat.revoke_token_id(listed["test"].id)
    assert env.client.get("/api/me", headers=env.alice.headers).status_code == 401


def test_users_cli_passwd_disable_tokens_revoke(tmp_path: Path) -> None:
    """The real CLI against a real catalog: passwd resets a lost admin password, disable locks out."""
    server = LiveServer(tmp_path)
    server.cli("users", "add", "root", "--admin", "--password", "first-root-password")
    weak = subprocess.run(
        [*EBBTIDE, "-c", str(server.config), "users", "add", "weak", "--password", "short"],
        env=server.env(),
        capture_output=True,
        timeout=60,
    )
    assert weak.returncode == 2 and b"at least 10 characters" in weak.stderr
    token = server.cli("users", "token", "root", "--label", "laptop", "--expires", "30d").strip()
    server.cli("users", "token", "root", "--label", "ci")
    table = server.cli("users", "tokens", "root")
    assert "laptop" in table and "ci" in table and "active" in table and token not in table
    reset = server.cli("users", "passwd", "root")  # lost password: a new one, shown once
    new_pw = reset.split("password:")[1].split()[0]
    from ebbtide.catalog import open_catalog
    from ebbtide.config import load_settings

    settings = load_settings(server.config, env={})
    cat = open_catalog(settings.catalog.url)
    try:
        root = cat.find_user("root")
        assert root is not None
        assert cat.check_password("root", "first-root-password") is None
        assert cat.check_password("root", new_pw) is not None
        laptop = next(t for t in cat.list_tokens(root.id) if t.label == "laptop")
        assert laptop.expires_at is not None and laptop.expires_at > time.time() + 29 * 86400
        assert cat.user_for_token(token) is not None
        server.cli("users", "revoke", laptop.id)
        assert cat.user_for_token(token) is None
        assert "revoked" in server.cli("users", "tokens", "root")
        server.cli("users", "disable", "root")
        assert cat.check_password("root", new_pw) is None
        server.cli("users", "disable", "root", "--enable")
        assert cat.check_password("root", new_pw) is not None
    finally:
        cat.close()


def test_changing_your_own_password_ends_your_sessions(env: Env) -> None:
    assert _login(env, "alice", env.alice.password) == 200
    stolen = env.client.cookies["ebbtide_session"]
    url = "/api/me/password"
    r = env.client.post(url, json={"current": "not-it-at-all", "new": "another-good-one"}, headers=ORIGIN)
    assert r.status_code == 403
    r = env.client.post(url, json={"current": env.alice.password, "new": "short"}, headers=ORIGIN)
    assert r.status_code == 400 and "10 characters" in r.json()["error"]
    r = env.client.post(url, json={"current": env.alice.password, "new": "another-good-one"}, headers=ORIGIN)
    assert r.status_code == 204
    env.client.cookies.clear()
    env.client.cookies.set("ebbtide_session", stolen)
    assert env.client.get("/api/me").status_code == 401
    env.client.cookies.clear()
    assert _login(env, "alice", "another-good-one") == 200
    assert env.client.get("/api/me", headers=env.alice.headers).status_code == 200  # tokens stay
