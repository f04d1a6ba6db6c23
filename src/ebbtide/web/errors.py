"""One place that turns errors into HTTP answers: `{"error": …, "hint": …}` and a status for APIs and
scripts, an HTML error page for a browser asking for a page.

NotFound is 404 whether the thing is missing or someone else's, so an id cannot be probed. Unknown
routes and wrong methods (Starlette's own HTTPException) get the same two shapes, never
Starlette's `{"detail": …}`.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ebbtide.errors import (
    BackendUnavailable,
    EbbtideError,
    IllegalTransition,
    InvalidKey,
    NotFound,
    StorageFull,
    Transient,
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


# What a person should read for a status with no message of our own (unknown route, wrong method).
_PLAIN = {
    404: ("There is nothing at this address.", "check the address, or start from the gallery"),
    405: ("This address does not take that kind of request.", "see /docs for the API"),
}


def _answer(
    request: Request,
    code: int,
    error: str,
    hint: str | None,
    headers: dict[str, str] | None = None,
    extra: dict[str, object] | None = None,
) -> Response:
    """The HTML page for a browser asking for a page (when pages are served), else the JSON shape."""
    if _wants_html(request) and "pages" in getattr(request.app.state, "parts", ()):
        from ebbtide.web.pages import error_page

        return error_page(request, code, error, hint)
    body: dict[str, object] = {**(extra or {}), "error": error, "hint": hint}
    return JSONResponse(body, status_code=code, headers=headers)


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
        elif code == 503:  # a transient refusal (all web probes busy): come back shortly
            from ebbtide.web.probe_proc import RETRY_AFTER

            headers = {"Retry-After": str(RETRY_AFTER)}
        elif code >= 500:
            log.error("request failed", extra={"path": request.url.path, "error": exc.message})
        return _answer(request, code, exc.message, exc.hint, headers or None, extra=body)

    @app.exception_handler(OSError)
    async def _os_error(request: Request, exc: OSError) -> Response:
        full = disk_full(exc)
        if full is None:
            raise exc  # anything else stays a 500 (and a logged traceback)
        log.error("request failed: disk full", extra={"path": request.url.path})
        return _answer(request, 507, full.message, full.hint)

    @app.exception_handler(DataError)
    async def _bad_data(request: Request, exc: DataError) -> Response:
        # a value the database refuses (NUL in text on PostgreSQL, out of range) is the caller's fault
        log.info("database refused a value", extra={"path": request.url.path})
        error = "the request holds a value that cannot be stored"
        return _answer(request, 400, error, "remove control characters")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        error, hint = _PLAIN.get(exc.status_code, (str(exc.detail), None))
        if exc.status_code not in _PLAIN and exc.detail:
            error = str(exc.detail)
        return _answer(request, exc.status_code, error, hint, dict(exc.headers or {}) or None)

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
