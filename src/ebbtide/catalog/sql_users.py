"""Users, scrypt passwords and API tokens."""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ebbtide.catalog import convert
from ebbtide.catalog.hashing import TOKEN_PREFIX, hash_password, new_token, token_hash, verify_password
from ebbtide.catalog.models import (
    ApiTokenRow,
    UserRow,
    new_id,
)
from ebbtide.catalog.records import (
    User,
)
from ebbtide.catalog.sql_core import (
    USER_NAME_PATTERN,
    SqlCore,
    dummy_hash,
    not_found,
    rowcount,
)
from ebbtide.errors import EbbtideError

log = logging.getLogger(__name__)


class UsersPart(SqlCore):
    def create_user(self, name: str, password: str | None = None, is_admin: bool = False) -> User:
        if not USER_NAME_PATTERN.match(name):
            raise EbbtideError(
                f"user name {name!r} is not allowed",
                hint="1-64 characters: letters, digits, '_', '.', '@', '-'; start with a letter or digit",
            )
        if password is not None and not password:
            raise EbbtideError("password must not be empty", hint="give a password or none at all")
        row = UserRow(
            id=new_id(),
            name=name,
            password_hash=hash_password(password) if password else None,
            is_admin=is_admin,
            created_at=self.clock.now(),
        )
        try:
            with self._tx() as s:
                if s.scalar(select(UserRow.id).where(UserRow.name == name)) is not None:
                    raise EbbtideError(f"user name {name!r} is taken", hint="pick another name")
                s.add(row)
        except IntegrityError:
            raise EbbtideError(f"user name {name!r} is taken", hint="pick another name") from None
        return convert.user(row)

    def get_user(self, user_id: str) -> User:
        with self._ro() as s:
            row = s.get(UserRow, user_id)
            if row is None:
                raise not_found("user", user_id)
            return convert.user(row)

    def find_user(self, name: str) -> User | None:
        with self._ro() as s:
            row = s.scalar(select(UserRow).where(UserRow.name == name))
            return convert.user(row) if row else None

    def list_users(self) -> list[User]:
        with self._ro() as s:
            rows = s.scalars(select(UserRow).order_by(UserRow.created_at, UserRow.name))
            return [convert.user(r) for r in rows]

    def check_password(self, name: str, password: str) -> User | None:
        with self._ro() as s:
            row = s.scalar(select(UserRow).where(UserRow.name == name))
        if row is None or not row.password_hash:
            verify_password(password, dummy_hash())
            return None
        return convert.user(row) if verify_password(password, row.password_hash) else None

    def create_token(self, user_id: str, label: str = "") -> str:
        if len(label) > 200:
            raise EbbtideError("token label is longer than 200 characters", hint="shorten the label")
        token = new_token()
        with self._tx() as s:
            if s.get(UserRow, user_id) is None:
                raise not_found("user", user_id)
            s.add(
                ApiTokenRow(
                    id=new_id(),
                    user_id=user_id,
                    token_sha256=token_hash(token),
                    label=label,
                    created_at=self.clock.now(),
                    revoked=False,
                )
            )
        log.info("api token created", extra={"user_id": user_id, "label": label})
        return token

    def user_for_token(self, token: str) -> User | None:
        if not token.startswith(TOKEN_PREFIX):
            return None
        with self._ro() as s:
            row = s.scalar(
                select(UserRow)
                .join(ApiTokenRow, ApiTokenRow.user_id == UserRow.id)
                .where(ApiTokenRow.token_sha256 == token_hash(token), ApiTokenRow.revoked.is_(False))
            )
            return convert.user(row) if row else None

    def revoke_token(self, token: str) -> bool:
        with self._tx() as s:
            n = rowcount(
                s,
                update(ApiTokenRow)
                .where(ApiTokenRow.token_sha256 == token_hash(token), ApiTokenRow.revoked.is_(False))
                .values(revoked=True, revoked_at=self.clock.now())
                .execution_options(synchronize_session=False),
            )
        return bool(n)
