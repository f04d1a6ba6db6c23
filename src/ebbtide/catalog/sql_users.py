"""Users, scrypt passwords, API tokens (expiring, revocable) and server-side login sessions."""

from __future__ import annotations

import hashlib
import logging

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from ebbtide.catalog import convert
from ebbtide.catalog.hashing import (
    PASSWORD_MIN_LENGTH,
    SESSION_PREFIX,
    TOKEN_PREFIX,
    hash_password,
    new_session_secret,
    new_token,
    password_problem,
    token_hash,
    verify_password,
)
from ebbtide.catalog.models import (
    ApiTokenRow,
    SessionRow,
    UserRow,
    new_id,
)
from ebbtide.catalog.records import (
    ApiToken,
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
from ebbtide.safetext import has_control_chars

log = logging.getLogger(__name__)


class WeakPassword(EbbtideError):
    """The password policy refused a password (400)."""


def _check_policy(password: str, min_length: int) -> None:
    problem = password_problem(password, min_length)
    if problem:
        raise WeakPassword(problem, hint="use a longer passphrase, or let ebbtide generate one")


def _check_name(name: str) -> None:
    if not USER_NAME_PATTERN.match(name):
        raise EbbtideError(
            f"user name {name!r} is not allowed",
            hint="1-64 characters: letters, digits, '_', '.', '@', '-'; start with a letter or digit",
        )


class UsersPart(SqlCore):
    def create_user(
        self,
        name: str,
        password: str | None = None,
        is_admin: bool = False,
        min_password_length: int = PASSWORD_MIN_LENGTH,
    ) -> User:
        _check_name(name)
        if password is not None:
            _check_policy(password, min_password_length)
        return self._insert_user(name, password, is_admin)

    def _insert_user(
        self,
        name: str,
        password: str | None,
        is_admin: bool,
        issuer: str | None = None,
        subject: str | None = None,
    ) -> User:
        row = UserRow(
            id=new_id(),
            name=name,
            password_hash=hash_password(password) if password else None,
            is_admin=is_admin,
            created_at=self.clock.now(),
            disabled=False,
            oidc_issuer=issuer,
            oidc_subject=subject,
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
        if has_control_chars(name) or len(name) > 200:
            return None
        with self._ro() as s:
            row = s.scalar(select(UserRow).where(UserRow.name == name))
            return convert.user(row) if row else None

    def list_users(self) -> list[User]:
        with self._ro() as s:
            rows = s.scalars(select(UserRow).order_by(UserRow.created_at, UserRow.name))
            return [convert.user(r) for r in rows]

    def check_password(self, name: str, password: str) -> User | None:
        """The user when name and password match and the account is enabled; same cost either way."""
        row = None
        if not has_control_chars(name) and len(name) <= 200:
            with self._ro() as s:
                row = s.scalar(select(UserRow).where(UserRow.name == name))
        if row is None or not row.password_hash:
            verify_password(password, dummy_hash())
            return None
        ok = verify_password(password, row.password_hash)
        return convert.user(row) if ok and not row.disabled else None

    def set_password(
        self, user_id: str, password: str, min_password_length: int = PASSWORD_MIN_LENGTH
    ) -> None:
        """New password; every login session of the user ends (tokens stay: revoke them apart)."""
        _check_policy(password, min_password_length)
        digest = hash_password(password)
        with self._tx() as s:
            row = s.get(UserRow, user_id)
            if row is None:
                raise not_found("user", user_id)
            row.password_hash = digest
            s.execute(delete(SessionRow).where(SessionRow.user_id == user_id))
        log.info("password changed", extra={"user_id": user_id})

    def set_disabled(self, user_id: str, disabled: bool = True) -> None:
        """A disabled user cannot log in and every cookie and token of theirs stops working."""
        with self._tx() as s:
            row = s.get(UserRow, user_id)
            if row is None:
                raise not_found("user", user_id)
            row.disabled = disabled
            if disabled:
                s.execute(delete(SessionRow).where(SessionRow.user_id == user_id))
        log.info("user disabled" if disabled else "user enabled", extra={"user_id": user_id})

    # -- OIDC ------------------------------------------------------------------------------------

    def oidc_user(self, issuer: str, subject: str, name_hint: str) -> User:
        """The user for (issuer, sub), created on first sight; the name is display only."""
        if not issuer or not subject or len(issuer) > 500 or len(subject) > 255:
            raise EbbtideError("an OIDC identity needs an issuer and a subject of sane length")
        with self._ro() as s:
            row = s.scalar(
                select(UserRow).where(UserRow.oidc_issuer == issuer, UserRow.oidc_subject == subject)
            )
            if row is not None:
                return convert.user(row)
        tag = hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()[:8]
        base = name_hint[:50] or "user"
        for name in (f"oidc-{base}", f"oidc-{base}-{tag}", f"oidc-{tag}-{new_id()[:6]}"):
            if not USER_NAME_PATTERN.match(name):
                continue
            try:
                return self._insert_user(name, None, False, issuer=issuer, subject=subject)
            except EbbtideError:
                with self._ro() as s:  # a concurrent first request may have created it
                    row = s.scalar(
                        select(UserRow).where(UserRow.oidc_issuer == issuer, UserRow.oidc_subject == subject)
                    )
                    if row is not None:
                        return convert.user(row)
        raise EbbtideError("could not name a new OIDC user", hint="try again")

    # -- API tokens ------------------------------------------------------------------------------

    def create_token(self, user_id: str, label: str = "", expires_at: float | None = None) -> str:
        if len(label) > 200 or has_control_chars(label):
            raise EbbtideError(
                "a token label must be at most 200 characters of plain text", hint="shorten the label"
            )
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
                    expires_at=expires_at,
                )
            )
        log.info("api token created", extra={"user_id": user_id, "label": label, "expires_at": expires_at})
        return token

    def user_for_token(self, token: str) -> User | None:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        now = self.clock.now()
        with self._ro() as s:
            row = s.scalar(
                select(UserRow)
                .join(ApiTokenRow, ApiTokenRow.user_id == UserRow.id)
                .where(
                    ApiTokenRow.token_sha256 == token_hash(token),
                    ApiTokenRow.revoked.is_(False),
                    (ApiTokenRow.expires_at.is_(None)) | (ApiTokenRow.expires_at > now),
                    UserRow.disabled.is_(False),
                )
            )
            return convert.user(row) if row else None

    def list_tokens(self, user_id: str) -> list[ApiToken]:
        with self._ro() as s:
            rows = s.scalars(
                select(ApiTokenRow).where(ApiTokenRow.user_id == user_id).order_by(ApiTokenRow.created_at)
            )
            return [convert.api_token(r) for r in rows]

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

    def revoke_token_id(self, token_id: str) -> ApiToken:
        """Revoke by the id `list_tokens` shows (the secret itself is never stored)."""
        with self._tx() as s:
            row = s.get(ApiTokenRow, token_id) if len(token_id) <= 64 else None
            if row is None:
                raise not_found("token", token_id)
            if not row.revoked:
                row.revoked, row.revoked_at = True, self.clock.now()
            record = convert.api_token(row)
        log.info("api token revoked", extra={"user_id": record.user_id, "token_id": token_id})
        return record

    # -- login sessions --------------------------------------------------------------------------

    def create_session(self, user_id: str, ttl: float) -> str:
        """A new login session; returns the cookie value once (only its sha256 is stored)."""
        secret = new_session_secret()
        now = self.clock.now()
        with self._tx() as s:
            if s.get(UserRow, user_id) is None:
                raise not_found("user", user_id)
            s.execute(delete(SessionRow).where(SessionRow.user_id == user_id, SessionRow.expires_at <= now))
            s.add(SessionRow(id=token_hash(secret), user_id=user_id, created_at=now, expires_at=now + ttl))
        return secret

    def user_for_session(self, secret: str) -> User | None:
        if not secret.startswith(SESSION_PREFIX) or len(secret) > 200:
            return None
        with self._ro() as s:
            row = s.scalar(
                select(UserRow)
                .join(SessionRow, SessionRow.user_id == UserRow.id)
                .where(
                    SessionRow.id == token_hash(secret),
                    SessionRow.expires_at > self.clock.now(),
                    UserRow.disabled.is_(False),
                )
            )
            return convert.user(row) if row else None

    def end_session(self, secret: str) -> bool:
        with self._tx() as s:
            n = rowcount(s, delete(SessionRow).where(SessionRow.id == token_hash(secret)))
        return bool(n)

    def end_sessions(self, user_id: str) -> int:
        with self._tx() as s:
            return rowcount(s, delete(SessionRow).where(SessionRow.user_id == user_id))
