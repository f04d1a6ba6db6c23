"""HMAC-SHA256 signatures for the file store's URLs, so a local store has S3's security model.

URL format (what `FileStore` hands out and what the web app must serve):

    GET  {url_base}/files/{key}?expires=<int epoch seconds>&sig=<hex>[&filename=<name>]
    PUT  {url_base}/files/{key}?expires=<int epoch seconds>&sig=<hex>

`key` is percent-encoded with `/` kept (`urllib.parse.quote(key, safe="/")`); the web app
decodes the path back to the key before verifying. The signature is

    hex(HMAC-SHA256(secret, f"{METHOD}\\n{key}\\n{expires}"[ + f"\\nfilename={name}"]))

so the method is signed too: a GET URL cannot be used to PUT. `filename` (the download name,
made safe by `content_disposition`) is signed when present, and any other query parameter is
refused: a client cannot mint new cache keys for the same bytes, so a shared cache in front of the
origin keys each object once per signing window.

Expiries are aligned to `window` (`expiry(now, ttl, window)`): everyone asking for the same object
within one window is handed the same URL, which is what lets a CDN or nginx cache it.

Multipart parts (`FileStore.signed_part_url`) are PUT URLs of the same form on the reserved key
`.uploads/<upload_id>/<part_number>`. The web app's handler for any verified PUT is
`FileStore.accept_put(key, stream)`, which returns the ETag (md5 hex of the bytes written) to
send back in the `ETag` response header; the browser passes those ETags to `complete_multipart`.

A web handler needs only:

    key = unquote(path_after_files)
    verify_query(secret, request.method, key, request.query_params, now=clock.now())
    GET -> FileResponse(store.path_for(key)); PUT -> etag = store.accept_put(key, body_stream)
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from typing import Literal
from urllib.parse import quote, urlencode

from ebbtide.errors import EbbtideError

Method = Literal["GET", "PUT"]
_METHODS = ("GET", "PUT")
QUERY_FIELDS = frozenset({"expires", "sig", "filename"})


class SignatureError(EbbtideError):
    """A signed URL was refused; `reason` is "expired" or "bad signature"."""

    def __init__(self, reason: str, hint: str | None = None) -> None:
        super().__init__(f"signed URL refused: {reason}", hint)
        self.reason = reason


def _message(method: str, key: str, expires_at: int, filename: str | None = None) -> bytes:
    tail = f"\nfilename={filename}" if filename else ""
    return f"{method.upper()}\n{key}\n{int(expires_at)}{tail}".encode()


def sign(secret: str, method: str, key: str, expires_at: int, filename: str | None = None) -> str:
    if not secret:
        raise EbbtideError("cannot sign a URL without a secret", hint="set store.secret in ebbtide.yaml")
    if method.upper() not in _METHODS:
        raise EbbtideError(f"cannot sign method {method!r}", hint="signed URLs are for GET or PUT")
    return hmac.new(secret.encode(), _message(method, key, expires_at, filename), hashlib.sha256).hexdigest()


def verify(
    secret: str,
    method: str,
    key: str,
    expires_at: int,
    signature: str,
    now: float,
    filename: str | None = None,
) -> None:
    """Raise `SignatureError` unless `signature` is this secret's for (method, key, expires_at).

    The signature is checked before the expiry so a tampered `expires` reads as a bad signature.
    """
    if method.upper() not in _METHODS or not secret:
        raise SignatureError("bad signature")
    expected = sign(secret, method, key, expires_at, filename)
    if not hmac.compare_digest(expected, signature.lower().encode("ascii", "replace").decode()):
        raise SignatureError("bad signature", hint="ask for a new link; this one was altered")
    if now > expires_at:
        raise SignatureError("expired", hint="ask for a new link; this one has expired")


def verify_query(secret: str, method: str, key: str, query: Mapping[str, str], now: float) -> None:
    """`verify` from a request's query parameters; a missing or malformed field is a bad signature.

    A parameter outside `QUERY_FIELDS` is refused: it is not covered by the signature, so accepting
    it would let anyone make endless distinct URLs (cache keys) for one object.
    """
    extra = sorted(set(query) - QUERY_FIELDS)
    if extra:
        raise SignatureError(
            f"unexpected query parameter {extra[0]!r}",
            hint="use the link exactly as it was handed out; only expires, sig and filename are allowed",
        )
    try:
        expires_at = int(query["expires"])
        signature = str(query["sig"])
    except (KeyError, ValueError, TypeError):
        raise SignatureError("bad signature", hint="the link lacks a valid expires/sig pair") from None
    verify(secret, method, key, expires_at, signature, now, query.get("filename") or None)


def expiry(now: float, expires_in: float, window: float = 0.0) -> int:
    """Whole epoch seconds, never sooner than `now + expires_in`.

    With a `window`, the expiry is rounded up to the next multiple of it: every URL signed for one
    object within a window is the same URL (a cacheable one), living between `expires_in` and
    `expires_in + window` seconds.
    """
    if expires_in <= 0:
        raise EbbtideError(f"expires_in must be positive, got {expires_in}", hint="pass seconds, e.g. 3600")
    if window < 0:
        raise EbbtideError(f"window must not be negative, got {window}", hint="pass seconds, e.g. 3600")
    at, step = now + expires_in, int(window)
    return math.ceil(at / step) * step if step >= 1 else math.ceil(at)


def signed_url(
    url_base: str,
    secret: str,
    method: str,
    key: str,
    expires_at: int,
    extra: Mapping[str, str] | None = None,
) -> str:
    filename = (extra or {}).get("filename") or None
    unknown = set(extra or {}) - {"filename"}
    if unknown:
        raise EbbtideError(f"cannot sign query parameters {sorted(unknown)}", hint="only filename is signed")
    query = {"expires": str(int(expires_at)), "sig": sign(secret, method, key, expires_at, filename)}
    if filename:
        query["filename"] = filename
    return f"{url_base.rstrip('/')}/files/{quote(key, safe='/')}?{urlencode(query)}"


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """An RFC 6266 header value: an ASCII fallback plus the UTF-8 name; no quotes or CR/LF leak in."""
    clean = "".join(ch for ch in filename if ch.isprintable() and ch not in "\r\n")
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in clean) or "download"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(clean, safe='')}"
