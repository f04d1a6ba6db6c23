"""Accounts: password policy, password change and disable end sessions, expiring and listable
tokens revoked by id, server-side sessions, OIDC users keyed on (issuer, sub), control characters."""

from __future__ import annotations

import pytest

from ebbtide.catalog import SqlCatalog
from ebbtide.catalog.records import User
from ebbtide.catalog.sql_users import WeakPassword
from ebbtide.clock import VirtualClock
from ebbtide.errors import EbbtideError, NotFound


def test_password_policy_defaults_to_ten_characters(cat: SqlCatalog) -> None:
    for weak in ("", "x", "123456789", "ok-but-\x00-nul"):
        with pytest.raises(WeakPassword) as e:
            cat.create_user("weak", weak)
        assert e.value.hint
    assert cat.find_user("weak") is None
    assert cat.create_user("strong", "0123456789").name == "strong"
    with pytest.raises(WeakPassword):
        cat.create_user("stricter", "0123456789", min_password_length=16)


def test_password_change_ends_every_session(cat: SqlCatalog, alice: User, clock: VirtualClock) -> None:
    cat.set_password(alice.id, "first-password")
    one, two = cat.create_session(alice.id, ttl=3600), cat.create_session(alice.id, ttl=3600)
    assert cat.user_for_session(one) == cat.user_for_session(two) == alice
    with pytest.raises(WeakPassword):
        cat.set_password(alice.id, "short")
    assert cat.user_for_session(one) == alice  # a refused change ends nothing
    cat.set_password(alice.id, "second-password")
    assert cat.user_for_session(one) is None and cat.user_for_session(two) is None
    assert cat.check_password("alice", "first-password") is None
    assert cat.check_password("alice", "second-password") == alice


def test_sessions_expire_and_end(cat: SqlCatalog, alice: User, bob: User, clock: VirtualClock) -> None:
    a, b = cat.create_session(alice.id, ttl=60), cat.create_session(bob.id, ttl=600)
    assert a.startswith("ebs_") and cat.user_for_session(a) == alice
    assert cat.end_session(a) is True and cat.user_for_session(a) is None
    assert cat.end_session(a) is False
    a2 = cat.create_session(alice.id, ttl=60)
    clock.advance(61)
    assert cat.user_for_session(a2) is None  # expired
    assert cat.user_for_session(b) == bob
    assert cat.end_sessions(bob.id) == 1 and cat.user_for_session(b) is None
    assert cat.user_for_session("ebs_made-up") is None and cat.user_for_session("ebt_x") is None


def test_disable_refuses_login_sessions_and_tokens(cat: SqlCatalog, alice: User) -> None:
    cat.set_password(alice.id, "alice-password")
    session = cat.create_session(alice.id, ttl=3600)
    token = cat.create_token(alice.id, "laptop")
    cat.set_disabled(alice.id)
    assert cat.get_user(alice.id).disabled
    assert cat.check_password("alice", "alice-password") is None
    assert cat.user_for_session(session) is None
    assert cat.user_for_token(token) is None
    cat.set_disabled(alice.id, False)
    assert cat.user_for_token(token) is not None  # tokens come back; sessions stay ended
    assert cat.user_for_session(session) is None
    assert cat.check_password("alice", "alice-password") is not None


def test_tokens_expire_list_and_revoke_by_id(
    cat: SqlCatalog, alice: User, bob: User, clock: VirtualClock
) -> None:
    short = cat.create_token(alice.id, "ci", expires_at=clock.now() + 60)
    forever = cat.create_token(alice.id, "laptop")
    listed = cat.list_tokens(alice.id)
    assert [(t.label, t.expires_at is not None) for t in listed] == [("ci", True), ("laptop", False)]
    assert all(short not in repr(t) and forever not in repr(t) for t in listed)
    assert cat.user_for_token(short) == alice
    clock.advance(61)
    assert cat.user_for_token(short) is None  # expired
    assert not cat.list_tokens(alice.id)[0].active(clock.now())
    revoked = cat.revoke_token_id(listed[1].id)
    assert revoked.revoked_at is not None and cat.user_for_token(forever) is None
    assert cat.list_tokens(bob.id) == []
    with pytest.raises(NotFound):
        cat.revoke_token_id("0" * 32)


def test_oidc_users_are_keyed_on_issuer_and_subject(cat: SqlCatalog) -> None:
    carol = cat.oidc_user("https://idp.a", "sub-1", "carol")
    assert carol.name == "oidc-carol"
    # same person renames themselves: same account
    assert cat.oidc_user("https://idp.a", "sub-1", "caroline") == carol
    # someone else picks the username "carol": a different account, never carol's
    mallory = cat.oidc_user("https://idp.a", "sub-2", "carol")
    assert mallory.id != carol.id and mallory.name.startswith("oidc-carol-")
    # same sub at another issuer is another person
    other = cat.oidc_user("https://idp.b", "sub-1", "carol")
    assert other.id not in (carol.id, mallory.id)
    # a local user named like an OIDC one is not taken over
    assert cat.oidc_user("https://idp.a", "sub-3", "x y/z").name.startswith("oidc-")
    with pytest.raises(EbbtideError):
        cat.oidc_user("", "sub", "x")


def test_control_characters_are_refused_not_crashed(cat: SqlCatalog, alice: User) -> None:
    assert cat.find_user("ali\x00ce") is None
    assert cat.check_password("ali\x00ce", "whatever-password") is None
    with pytest.raises(EbbtideError):
        cat.create_user("ali\x00ce")
    with pytest.raises(EbbtideError):
        cat.create_token(alice.id, "bad\x00label")
    media = cat.create_media(alice.id, "ok", "users/x/source", 1)
    with pytest.raises(EbbtideError, match="control"):
        cat.rename_media(media.id, alice.id, "evil\x00title")
    with pytest.raises(EbbtideError, match="control"):
        cat.create_media(alice.id, "evil\x07", "users/x/source2", 1)
    assert cat.usage(alice.id) == (1, 1)
