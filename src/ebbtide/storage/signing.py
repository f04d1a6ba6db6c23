"""HMAC-SHA256 signatures for the file store's URLs, so a local store has S3's security model.

URL format (what `FileStore` hands out and what the web app must serve):

    GET  {url_base}/files/{key}?expires=<int epoch seconds>&sig=<hex>[&filename=<name>]
    PUT  {url_base}/files/{key}?expires=<int epoch seconds>&sig=<hex>

`key` is percent-encoded with `/` kept (`urllib.parse.quote(key, safe="/")`); the web app
decodes the path back to the key before verifying. The signature is

    hex(HMAC-SHA256(secret, f"{METHOD}\\n{key}\\n{expires}"))

so the method is signed too: a GET URL cannot be used to PUT. `filename` is not signed: it only
sets the download name (`content_disposition` builds a safe header from it).

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


class SignatureError(EbbtideError):
    """A signed URL was refused; `reason` is "expired" or "bad signature"."""

    def __init__(self, reason: str, hint: str | None = None) -> None:
        super().__init__(f"signed URL refused: {reason}", hint)
        self.reason = reason


def _message(method: str, key: str, expires_at: int) -> bytes:
    return f"{method.upper()}\n{key}\n{int(expires_at)}".encode()


def sign(secret: str, method: str, key: str, expires_at: int) -> str:
    if not secret:
        raise EbbtideError("cannot sign a URL without a secret", hint="set store.secret in ebbtide.yaml")
    if method.upper() not in _METHODS:
        raise EbbtideError(f"cannot sign method {method!r}", hint="signed URLs are for GET or PUT")
    return hmac.new(secret.encode(), _message(method, key, expires_at), hashlib.sha256).hexdigest()


def verify(secret: str, method: str, key: str, expires_at: int, signature: str, now: float) -> None:
    """Raise `SignatureError` unless `signature` is this secret's for (method, key, expires_at).

    The signature is checked before the expiry so a tampered `expires` reads as a bad signature.
    """
    if method.upper() not in _METHODS or not secret:
        raise SignatureError("bad signature")
    expected = hmac.new(secret.encode(), _message(method, key, expires_at), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower().encode("ascii", "replace").decode()):
        raise SignatureError("bad signature", hint="ask for a new link; this one was altered")
    if now > expires_at:
        raise SignatureError("expired", hint="ask for a new link; this one has expired")


def verify_query(secret: str, method: str, key: str, query: Mapping[str, str], now: float) -> None:
    """`verify` from a request's query parameters; a missing or malformed field is a bad signature."""
    try:
        expires_at = int(query["expires"])
        signature = str(query["sig"])
    except (KeyError, ValueError, TypeError):
        raise SignatureError("bad signature", hint="the link lacks a valid expires/sig pair") from None
    verify(secret, method, key, expires_at, signature, now)


def expiry(now: float, expires_in: float) -> int:
    """Whole epoch seconds, rounded up so a URL never lives shorter than asked."""
    if expires_in <= 0:
        raise EbbtideError(f"expires_in must be positive, got {expires_in}", hint="pass seconds, e.g. 3600")
    return math.ceil(now + expires_in)


def signed_url(
    url_base: str,
    secret: str,
    method: str,
    key: str,
    expires_at: int,
    extra: Mapping[str, str] | None = None,
) -> str:
    query = {"expires": str(int(expires_at)), "sig": sign(secret, method, key, expires_at)}
    query.update(extra or {})
    return f"{url_base.rstrip('/')}/files/{quote(key, safe='/')}?{urlencode(query)}"


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """An RFC 6266 header value: an ASCII fallback plus the UTF-8 name; no quotes or CR/LF leak in."""
    clean = "".join(ch for ch in filename if ch.isprintable() and ch not in "\r\n")
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in clean) or "download"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(clean, safe='')}"
