"""`/docs` and `/openapi.json` from vendored Swagger UI assets, to admins only by default.

The API description lists every route and parameter: useful to an attacker mapping the app, so
`web.docs` decides who sees it (`admin`, `public` or `off`). Nothing is loaded from a CDN.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ebbtide.errors import NotFound
from ebbtide.web.auth import SESSION_COOKIE, Forbidden, ServicesDep, Unauthorized, bearer_user, session_user

router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ebbtide API</title>
<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script></body></html>
"""


def _allowed(request: Request, services: ServicesDep) -> None:
    mode = services.settings.web.docs
    if mode == "off":
        raise NotFound("the API docs are turned off", hint="set web.docs to admin or public")
    if mode == "public":
        return
    user = (
        bearer_user(request, services)
        if request.headers.get("authorization")
        else session_user(services, request.cookies.get(SESSION_COOKIE))
    )
    if user is None:
        raise Unauthorized("sign in as an admin to read the API docs", hint="log in at /login")
    if not user.is_admin:
        raise Forbidden("the API docs are for admins", hint="or set web.docs: public")


@router.get("/openapi.json")
def openapi(request: Request, services: ServicesDep) -> Response:
    _allowed(request, services)
    return JSONResponse(request.app.openapi())


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request, services: ServicesDep) -> Response:
    _allowed(request, services)
    return HTMLResponse(_PAGE, headers={"Content-Security-Policy": DOCS_CSP})


# Swagger UI sets inline styles; scripts stay 'self' only.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
)
