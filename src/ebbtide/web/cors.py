"""CORS for the stream and file routes: players on another origin (hls.js, Shaka) may fetch them.

Only `/api/stream/…` and `/files/…` answer cross-origin, and only to the origins in `cors.origins`
(`*` allows any). Preflights are answered here, before routing (the routes have no OPTIONS). The
stream API is authorised by bearer token, never by cookie, so credentials are not allowed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

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
    if not cfg.origins:
        return

    @app.middleware("http")
    async def _cors(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if not applies(request.url.path):
            return await call_next(request)
        allow = allowed_origin(request.headers.get("origin"), cfg.origins)
        preflight = request.method == "OPTIONS" and "access-control-request-method" in request.headers
        if preflight:
            if allow is None:
                return Response(status_code=403, headers={"Vary": "Origin"})
            return Response(status_code=204, headers={
                "Access-Control-Allow-Origin": allow,
                "Access-Control-Allow-Methods": ALLOW_METHODS,
                "Access-Control-Allow-Headers": ALLOW_HEADERS,
                "Access-Control-Max-Age": str(cfg.max_age),
                "Vary": "Origin",
            })  # fmt: skip
        response = await call_next(request)
        if allow is not None:
            response.headers["Access-Control-Allow-Origin"] = allow
            response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        response.headers.setdefault("Vary", "Origin")
        return response
