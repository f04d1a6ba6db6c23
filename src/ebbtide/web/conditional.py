"""HTTP validators and cache headers for stored objects (RFC 9110 §13, RFC 9111), as pure functions.

Kept apart from the route so the rules are table-tested without a server: a matching
`If-None-Match` wins over `If-Modified-Since`; weak comparison for `If-None-Match`; a date the
client sends is compared at one-second precision, as HTTP dates have no more.
"""

from __future__ import annotations

import hashlib
import math
import os
from email.utils import formatdate, parsedate_to_datetime
from pathlib import PurePosixPath

# Objects whose bytes never change once written: HLS segments and init sections live under a
# per-attempt prefix, so a shared cache may keep them for as long as their URL is valid.
IMMUTABLE_SUFFIXES = frozenset({".m4s", ".mp4", ".ts", ".aac", ".jpg", ".jpeg", ".png", ".webp"})
MAX_AGE_CAP = 24 * 3600


def etag_for(st: os.stat_result) -> str:
    """The same validator Starlette's FileResponse sends, so HEAD, GET and 304 agree."""
    return '"' + hashlib.md5(f"{st.st_mtime}-{st.st_size}".encode(), usedforsecurity=False).hexdigest() + '"'


def last_modified(st: os.stat_result) -> str:
    return formatdate(st.st_mtime, usegmt=True)


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def not_modified(if_none_match: str | None, if_modified_since: str | None, etag: str, mtime: float) -> bool:
    """True when a conditional GET/HEAD may be answered 304 (RFC 9110 §13.1.2, §13.1.3)."""
    if if_none_match is not None:
        tags = [t for t in (p.strip() for p in if_none_match.split(",")) if t]
        return "*" in tags or any(_opaque(t) == _opaque(etag) for t in tags)
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        return math.floor(mtime) <= since
    return False


def signed_cache_control(key: str, seconds_left: float) -> str:
    """Cache-Control for an object fetched with a signed URL.

    The URL (with its signature and aligned expiry) is the cache key and the capability, so a
    shared cache may store the response, but never past the URL's own expiry: `max-age` is the
    time the signature has left. Immutable media objects say so, which spares revalidation.
    """
    age = max(0, min(MAX_AGE_CAP, math.floor(seconds_left)))
    immutable = PurePosixPath(key).suffix.lower() in IMMUTABLE_SUFFIXES
    return f"public, max-age={age}" + (", immutable" if immutable and age else "")
