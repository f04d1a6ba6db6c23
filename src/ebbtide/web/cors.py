"""CORS for the stream and file routes: players on another origin (hls.js, Shaka) may fetch them.

Only `/api/stream/…` and `/files/…` answer cross-origin, and only to the origins in `cors.origins`
(`*` allows any). Preflights are answered here, before routing (the routes have no OPTIONS). The
stream API is authorised by bearer token, never by cookie, so credentials are not allowed.
"""

from __future__ import annotations

from fastapi import FastAPI, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ebbtide.config.sections import CorsConfig

PREFIXES = ("/api/stream/", "/files/")
ALLOW_METHODS = "GET, HEAD, OPTIONS"
ALLOW_HEADERS = "Authorization, Range, Content-Type"
EXPOSE_HEADERS = "Content-Length, Content-Range, Content-Type, ETag"


def allowed_origin(origin: str | None, origins: tuple[str, ...]) -> str | None:
    """The Access-Control-Allow-Origin value for `origin`, or None when it is not allowed (pure)."""
    if not origin or not origins:
        return None
    if "*" in origins:
        return "*"
    return origin if origin.rstrip("/") in {o.rstrip("/") for o in origins} else None


def applies(path: str) -> bool:
    return path.startswith(PREFIXES)


def install(app: FastAPI, cfg: CorsConfig) -> None:
    if cfg.origins:
        app.add_middleware(Cors, cfg=cfg)


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class Cors:
    """Plain ASGI (no body buffering or streaming wrapper): a 2 MB segment passes through untouched;
    only the `http.response.start` message gains the CORS headers."""

    def __init__(self, app: ASGIApp, cfg: CorsConfig) -> None:
        self.app = app
        self.cfg = cfg

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not applies(scope["path"]):
            await self.app(scope, receive, send)
            return
        h = {k: v for k, v in scope["headers"] if k in (b"origin", b"access-control-request-method")}
        origin = h[b"origin"].decode("latin-1") if b"origin" in h else None
        allow = allowed_origin(origin, self.cfg.origins)
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in h:
            if allow is None:
                answer = Response(status_code=403, headers={"Vary": "Origin"})
            else:
                answer = Response(status_code=204, headers={
                    "Access-Control-Allow-Origin": allow,
                    "Access-Control-Allow-Methods": ALLOW_METHODS,
                    "Access-Control-Allow-Headers": ALLOW_HEADERS,
                    "Access-Control-Max-Age": str(self.cfg.max_age),
                    "Vary": "Origin",
                })  # fmt: skip
            await answer(scope, receive, send)
            return
        ours = (
            {"Access-Control-Allow-Origin": allow, "Access-Control-Expose-Headers": EXPOSE_HEADERS}
            if allow
            else {}
        )

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {n.lower().encode("latin-1") for n in ours}
                raw = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                raw += _raw(ours)
                if not any(k.lower() == b"vary" for k, _ in raw):
                    raw.append((b"vary", b"Origin"))
                message = {**message, "headers": raw}
            await send(message)

        await self.app(scope, receive, sending)
