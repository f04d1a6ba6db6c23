"""Server-rendered pages (Jinja2 + a little vanilla JS, no build step): login, gallery, upload,
player, fleet dashboard. Data comes from the same APIs the pages' scripts call with the session."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ebbtide.catalog.records import User
from ebbtide.web.auth import SESSION_COOKIE, Forbidden, ServicesDep, Unauthorized, session_user

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

router = APIRouter(include_in_schema=False)


def page_user(request: Request, services: ServicesDep) -> User:
    user = session_user(services, request.cookies.get(SESSION_COOKIE))
    if user is None:
        raise Unauthorized("sign in first")
    return user


PageUser = Annotated[User, Depends(page_user)]


def _page(request: Request, name: str, user: User | None, **ctx: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"user": user, **ctx})


@router.get("/login", response_class=HTMLResponse)
def login_page(
    request: Request, services: ServicesDep, error: str | None = None, next: str = "/"
) -> Response:
    if session_user(services, request.cookies.get(SESSION_COOKIE)) is not None:
        return RedirectResponse("/", status_code=303)
    safe_next = next if next.startswith("/") and not next.startswith("//") else "/"
    return _page(request, "login.html", None, error=bool(error), next=safe_next)


@router.get("/", response_class=HTMLResponse)
def gallery_page(request: Request, user: PageUser) -> Response:
    return _page(request, "gallery.html", user)


@router.get("/upload", response_class=HTMLResponse)
def upload_page(request: Request, user: PageUser, services: ServicesDep) -> Response:
    return _page(request, "upload.html", user, max_upload=services.settings.web.max_upload)


@router.get("/watch/{media_id}", response_class=HTMLResponse)
def player_page(
    request: Request,
    user: PageUser,
    services: ServicesDep,
    media_id: Annotated[str, PathParam(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")],
) -> Response:
    media = services.catalog.get_media(media_id, owner_id=user.id)  # NotFound → 404
    return _page(request, "player.html", user, media=media)


@router.get("/fleet", response_class=HTMLResponse)
def fleet_page(request: Request, user: PageUser) -> Response:
    if not user.is_admin:
        raise Forbidden("the fleet dashboard is for admins only")
    return _page(request, "fleet.html", user)
