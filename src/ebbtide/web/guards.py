"""Request guards that sit in front of every route: allowed Host, control characters in the URL,
slow request bodies, and the Content-Security-Policy of the pages.

They are plain ASGI middleware (no body buffering), so uploads still stream.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import unquote_to_bytes, urlparse

from ebbtide.config.settings import Settings
from ebbtide.web.hosts import host_allowed

Scope = dict[str, Any]
Message = dict[str, Any]
_EXEMPT_HOST = frozenset({"/health", "/health/ready", "/health/live"})


def page_csp(settings: Settings) -> str:
    """Scripts only from this origin (the pages' own files and the vendored hls.js); media and
    thumbnails may also come from the object store when S3 serves them straight to the browser."""
    store = ""
    if settings.store.url.startswith("s3://"):
        endpoint = settings.store.endpoint_url
        if endpoint:
            p = urlparse(endpoint)
            store = f" {p.scheme}://{p.netloc}"
        else:
            store = " https://*.amazonaws.com"
        cdn = settings.store.cloudfront_domain
        if cdn:  # media URLs are signed for the distribution (storage/cloudfront.py)
            store += " https://" + cdn.removeprefix("https://").strip("/")
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data: blob:{store}; media-src 'self' blob:{store}; "
        f"connect-src 'self'{store}; worker-src 'self' blob:; frame-ancestors 'none'; "
        "base-uri 'self'; form-action 'self'; object-src 'none'"
    )


_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


def _has_control(raw: bytes) -> bool:
    return _CONTROL.search(raw) is not None  # one C scan per request, not a Python loop per byte


async def _answer(
    send: Any, status: int, error: str, hint: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    body = json.dumps({"error": error, "hint": hint}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Guards:
    def __init__(self, app: Any, allowed: frozenset[str], body_timeout: float, csp: str) -> None:
        self.app = app
        self.allowed = allowed
        self.body_timeout = body_timeout
        self.csp = csp.encode()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1")
        if scope["path"] not in _EXEMPT_HOST and not host_allowed(host, self.allowed):
            await _answer(
                send, 400, "this server does not answer to that host name", "add it to web.allowed_hosts"
            )
            return
        raw_path = scope.get("raw_path") or scope["path"].encode()
        if _has_control(unquote_to_bytes(raw_path)) or _has_control(
            unquote_to_bytes(scope.get("query_string", b""))
        ):
            await _answer(send, 400, "the URL contains control characters", "remove them")
            return
        await self.app(scope, self._timed(receive), self._with_csp(send))

    def _timed(self, receive: Any) -> Any:
        """Each body chunk must arrive within body_timeout; after the last one, receive is untouched
        (a streaming response waits on it for the disconnect)."""
        done = False

        async def timed() -> Message:
            nonlocal done
            if done:
                return await receive()
            try:
                message: Message = await asyncio.wait_for(receive(), self.body_timeout)
            except TimeoutError:
                from ebbtide.web.uploads import BodyTimeout

                raise BodyTimeout(
                    f"the request body stalled for {self.body_timeout:g} s",
                    hint="send the body without pauses",
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                done = True
            return message

        return timed

    def _with_csp(self, send: Any) -> Any:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                hdrs = list(message.get("headers") or [])
                names = {k.lower() for k, _ in hdrs}
                ctype = next((v for k, v in hdrs if k.lower() == b"content-type"), b"")
                if ctype.startswith(b"text/html") and b"content-security-policy" not in names:
                    hdrs.append((b"content-security-policy", self.csp))
                    message = {**message, "headers": hdrs}
            await send(message)

        return sending
