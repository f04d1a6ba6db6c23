"""Users, scrypt passwords and API tokens (stored as sha256, revocable)."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from ebbtide.catalog import Catalog, SqlCatalog
from ebbtide.catalog.models import ApiTokenRow, UserRow
from ebbtide.catalog.records import User
from ebbtide.errors import EbbtideError, NotFound


def test_users_and_passwords(cat: SqlCatalog) -> None:
    alice = cat.create_user("alice", "correct horse")
    admin = cat.create_user("root", "s3cret-root-pw", is_admin=True)
    assert cat.get_user(admin.id).is_admin
    assert cat.find_user("alice") == alice
    assert cat.find_user("nobody") is None
    assert [u.name for u in cat.list_users()] == ["alice", "root"]
    assert cat.check_password("alice", "correct horse") == alice
    assert cat.check_password("alice", "wrong") is None
    assert cat.check_password("nobody", "correct horse") is None
    passwordless = cat.create_user("svc")
    assert cat.check_password("svc", "") is None
    with pytest.raises(NotFound):
        cat.get_user("0" * 32)
    with cat._ro() as s:  # salted scrypt, never the password itself
        stored = s.scalar(select(UserRow.password_hash).where(UserRow.id == alice.id))
        assert stored is not None and stored.startswith("scrypt$") and "correct horse" not in stored
        assert s.scalar(select(UserRow.password_hash).where(UserRow.id == passwordless.id)) is None
    other = cat.create_user("alice2", "correct horse")
    with cat._ro() as s:
        stored2 = s.scalar(select(UserRow.password_hash).where(UserRow.id == other.id))
    assert stored2 != stored  # different salt


def test_bad_or_duplicate_user_names_are_refused(cat: SqlCatalog, alice: User) -> None:
    with pytest.raises(EbbtideError, match="taken") as e:
        cat.create_user("alice")
    assert e.value.hint
    for bad in ("", "has space", "x" * 65, "../etc"):
        with pytest.raises(EbbtideError):
            cat.create_user(bad)
    assert [u.name for u in cat.list_users()] == ["alice"]


def test_tokens_are_hashed_and_revocable(cat: SqlCatalog, alice: User, bob: User) -> None:
    token = cat.create_token(alice.id, label="laptop")
    assert token.startswith("ebt_") and len(token) > 40
    assert cat.user_for_token(token) == alice
    bob_token = cat.create_token(bob.id)
    assert cat.user_for_token(bob_token) == bob
    with cat._ro() as s:
        rows = s.scalars(select(ApiTokenRow)).all()
    assert {r.token_sha256 for r in rows} == {
        hashlib.sha256(t.encode()).hexdigest() for t in (token, bob_token)
    }
    assert all(token not in (r.token_sha256, r.label) for r in rows)

    assert cat.revoke_token(token) is True
    assert cat.user_for_token(token) is None  # revoked token refused
    assert cat.revoke_token(token) is False  # already revoked
    assert cat.user_for_token(bob_token) == bob  # others unaffected
    assert cat.user_for_token("ebt_made-up") is None
    assert cat.user_for_token("not-a-token") is None
    with pytest.raises(NotFound):
        cat.create_token("0" * 32)


def test_sql_catalog_implements_every_method_of_the_port(cat: SqlCatalog) -> None:
    port: Catalog = cat  # mypy checks the signatures; this checks nothing is missing at runtime
    wanted = {n for n in vars(Catalog) if not n.startswith("_") and callable(getattr(Catalog, n))}
    assert wanted and all(callable(getattr(port, n, None)) for n in wanted)
