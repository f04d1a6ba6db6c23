"""Server-rendered pages (Jinja2 + a little vanilla JS, no build step): login, gallery, upload,
player, fleet dashboard. Data comes from the same APIs the pages' scripts call with the session."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ebbtide.catalog.records import User
from ebbtide.catalog.states import MediaState
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


def error_page(request: Request, code: int, error: str, hint: str | None) -> HTMLResponse:
    """The HTML answer to a browser for a page that failed (404 and friends); APIs answer JSON."""
    services = request.app.state.services
    user = session_user(services, request.cookies.get(SESSION_COOKIE))
    return templates.TemplateResponse(
        request, "error.html", {"user": user, "code": code, "error": error, "hint": hint}, status_code=code
    )


GENERIC_TODO = (
    "Check that the file plays on your computer, then upload it again. If it keeps failing, "
    "convert it to MP4 (H.264 video, AAC audio) and upload that."
)


def failure_advice(error: str | None) -> tuple[str, str]:
    """(what went wrong, what to do) from a failed video's error: `what — what to do` by convention."""
    text = (error or "").strip()
    if not text:
        return "The video could not be processed, and no reason was recorded.", GENERIC_TODO
    what, sep, todo = text.partition(" — ")
    if not sep or not todo.strip():
        return text, GENERIC_TODO
    todo = todo.strip()
    return what.strip(), todo[0].upper() + todo[1:] + ("" if todo.endswith(".") else ".")


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    return FileResponse(HERE / "static" / "favicon.ico", media_type="image/x-icon",
                        headers={"Cache-Control": "public, max-age=86400"})  # fmt: skip


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
    what, todo = failure_advice(media.error) if media.state == MediaState.FAILED else ("", "")
    return _page(request, "player.html", user, media=media, failed_what=what, failed_todo=todo)


@router.get("/fleet", response_class=HTMLResponse)
def fleet_page(request: Request, user: PageUser) -> Response:
    if not user.is_admin:
        raise Forbidden("the fleet dashboard is for admins only")
    return _page(request, "fleet.html", user)
