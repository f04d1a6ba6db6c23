"""Password and API-token hashing: pure functions, no database.

Passwords use scrypt (memory-hard, salted, parameters stored with the hash so they can be
raised later). API tokens are long random strings, so a plain sha256 is enough to store them:
a leaked table cannot be replayed and lookups stay a simple indexed equality.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

TOKEN_PREFIX = "ebt_"
SESSION_PREFIX = "ebs_"
PASSWORD_MIN_LENGTH = 10  # the default policy; web.password_min_length may raise it
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def password_problem(password: str, min_length: int = PASSWORD_MIN_LENGTH) -> str | None:
    """Why `password` is refused by the policy, or None when it is acceptable."""
    if len(password) < min_length:
        return f"a password needs at least {min_length} characters"
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        return "a password must not contain control characters"
    return None


def new_session_secret() -> str:
    return SESSION_PREFIX + secrets.token_urlsafe(32)
