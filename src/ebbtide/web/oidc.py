"""OIDC bearer tokens (e.g. Cognito) verified against the configured JWKS URL.

A verified token maps to the catalog user keyed on its (issuer, `sub`), created on first sight, so
media ownership works the same for OIDC and local users. The username claim is editable at most
providers, so it only names the account for display; two people can never share one. The audience
is always checked (config requires it): a token minted for another app of the same provider is
refused. Admin rights come from the token's groups each time (never stored), so removing someone
from the group takes effect at once.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any

import jwt

from ebbtide.catalog.base import Catalog
from ebbtide.catalog.records import User
from ebbtide.config.sections import OidcConfig

log = logging.getLogger(__name__)

_NAME_CLAIMS = ("cognito:username", "preferred_username", "username", "email")
_SAFE = re.compile(r"[^A-Za-z0-9._@-]")


def _audience_ok(claims: dict[str, Any], audience: str) -> bool:
    """ID tokens name the client in `aud`; Cognito access tokens carry `client_id` instead."""
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    return audience in auds or claims.get("client_id") == audience


class OidcVerifier:
    def __init__(self, cfg: OidcConfig) -> None:
        self.cfg = cfg
        self._jwks = jwt.PyJWKClient(cfg.jwks_url, cache_jwk_set=True, lifespan=300, timeout=5)

    def claims(self, token: str) -> dict[str, Any] | None:
        """The token's verified claims, or None when it is not valid (reason logged, token never)."""
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256", "RS384", "RS512", "ES256", "ES384"],
                issuer=self.cfg.issuer,
                options={"verify_aud": False, "require": ["exp", "sub", "iss"]},
            )
        except (jwt.PyJWTError, jwt.PyJWKClientError) as e:
            log.info("oidc token refused", extra={"reason": type(e).__name__})
            return None
        if not _audience_ok(claims, self.cfg.audience):
            log.info("oidc token refused", extra={"reason": "audience"})
            return None
        return claims

    def user_for(self, catalog: Catalog, token: str) -> User | None:
        claims = self.claims(token)
        if claims is None or not claims.get("iss") or not claims.get("sub"):
            return None
        raw = next((str(claims[c]) for c in _NAME_CLAIMS if claims.get(c)), "")
        user = catalog.oidc_user(str(claims["iss"]), str(claims["sub"]), _SAFE.sub("_", raw)[:50])
        if user.disabled:
            return None
        groups = claims.get("cognito:groups") or claims.get("groups") or []
        admin = bool(self.cfg.admin_group and isinstance(groups, list) and self.cfg.admin_group in groups)
        return dataclasses.replace(user, is_admin=admin or user.is_admin)
