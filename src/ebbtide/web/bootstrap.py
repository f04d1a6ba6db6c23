"""First run: an `admin` user with a generated password, shown once and never logged."""

from __future__ import annotations

import logging
import secrets

from ebbtide.catalog.base import Catalog

log = logging.getLogger(__name__)

ADMIN = "admin"


def ensure_admin(catalog: Catalog) -> tuple[str, str | None]:
    """(name, password) — the password only when the admin was created now, else None."""
    if catalog.find_user(ADMIN) is not None:
        return ADMIN, None
    password = secrets.token_urlsafe(12)
    catalog.create_user(ADMIN, password=password, is_admin=True)
    log.info("admin user created", extra={"user": ADMIN})
    return ADMIN, password
