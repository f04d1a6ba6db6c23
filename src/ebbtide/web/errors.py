"""One place that turns ebbtide errors into HTTP answers: `{"error": …, "hint": …}` and a status.

NotFound is 404 whether the thing is missing or someone else's, so an id cannot be probed.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response

from ebbtide.errors import EbbtideError, IllegalTransition, InvalidKey, NotFound, Transient
from ebbtide.web.auth import CrossOrigin, Forbidden, Unauthorized
from ebbtide.web.uploads import TooLarge, UploadError

log = logging.getLogger(__name__)


def status_for(exc: EbbtideError) -> int:
    from ebbtide.media.errors import MediaError
    from ebbtide.storage.keys import UploadError as StoreUploadError
    from ebbtide.storage.signing import SignatureError

    table: list[tuple[type[EbbtideError], int]] = [
        (Unauthorized, 401),
        (Forbidden, 403),
        (CrossOrigin, 403),
        (SignatureError, 403),
        (NotFound, 404),
        (InvalidKey, 404),  # a bad key names nothing we have
        (IllegalTransition, 409),
        (TooLarge, 413),
        (MediaError, 422),
        (UploadError, 400),
        (StoreUploadError, 400),
        (Transient, 503),  # busy probe slots, a probe the host killed: try again shortly
    ]
    for cls, code in table:
        if isinstance(exc, cls):
            return code
    return 400


def _wants_html(request: Request) -> bool:
    return (
        request.method == "GET"
        and "text/html" in request.headers.get("accept", "")
        and not (request.url.path.startswith("/api/") or request.url.path.startswith("/files/"))
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(EbbtideError)
    async def _ebbtide(request: Request, exc: EbbtideError) -> Response:
        code = status_for(exc)
        if code == 401 and _wants_html(request):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
        if code == 503:
            from ebbtide.web.probe_proc import RETRY_AFTER

            headers = {"Retry-After": str(RETRY_AFTER)}
        if code >= 500:
            log.error("request failed", extra={"path": request.url.path, "error": exc.message})
        return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(
            {
                "error": f"invalid request: {where}: {first.get('msg', 'bad value')}",
                "hint": "see /docs",
                "detail": [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()],
            },
            status_code=422,
        )
