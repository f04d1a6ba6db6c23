"""One place that turns ebbtide errors into HTTP answers: `{"error": …, "hint": …}` and a status.

NotFound is 404 whether the thing is missing or someone else's, so an id cannot be probed.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError

from ebbtide.errors import (
    BackendUnavailable,
    EbbtideError,
    IllegalTransition,
    InvalidKey,
    NotFound,
    StorageFull,
    disk_full,
)
from ebbtide.web.auth import CrossOrigin, Forbidden, TooManyAttempts, Unauthorized
from ebbtide.web.uploads import BodyTimeout, OverQuota, TooLarge, UploadError

log = logging.getLogger(__name__)


def status_for(exc: EbbtideError) -> int:
    from ebbtide.media.errors import MediaError
    from ebbtide.storage.keys import UploadError as StoreUploadError
    from ebbtide.storage.signing import SignatureError

    table: list[tuple[type[EbbtideError], int]] = [
        (BackendUnavailable, 503),  # the queue/catalog/store is down; it reconnects by itself
        (StorageFull, 507),
        (Unauthorized, 401),
        (Forbidden, 403),
        (CrossOrigin, 403),
        (SignatureError, 403),
        (NotFound, 404),
        (InvalidKey, 404),  # a bad key names nothing we have
        (BodyTimeout, 408),
        (IllegalTransition, 409),
        (TooLarge, 413),
        (OverQuota, 413),
        (TooManyAttempts, 429),
        (MediaError, 422),
        (UploadError, 400),
        (StoreUploadError, 400),
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
        headers: dict[str, str] = {"WWW-Authenticate": "Bearer"} if code == 401 else {}
        body: dict[str, object] = {"error": exc.message, "hint": exc.hint}
        if isinstance(exc, TooManyAttempts):
            headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, BackendUnavailable):
            headers = {"Retry-After": "5"}
            body["part"] = exc.part
        elif code >= 500:
            log.error("request failed", extra={"path": request.url.path, "error": exc.message})
        return JSONResponse(body, status_code=code, headers=headers)

    @app.exception_handler(OSError)
    async def _os_error(request: Request, exc: OSError) -> Response:
        full = disk_full(exc)
        if full is None:
            raise exc  # anything else stays a 500 (and a logged traceback)
        log.error("request failed: disk full", extra={"path": request.url.path})
        return JSONResponse({"error": full.message, "hint": full.hint}, status_code=507)

    @app.exception_handler(DataError)
    async def _bad_data(request: Request, exc: DataError) -> Response:
        # a value the database refuses (NUL in text on PostgreSQL, out of range) is the caller's fault
        log.info("database refused a value", extra={"path": request.url.path})
        return JSONResponse(
            {"error": "the request holds a value that cannot be stored", "hint": "remove control characters"},
            status_code=400,
        )

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
