"""Who is asking: session cookies for pages, bearer tokens (ebt_… or OIDC) for APIs, same-origin POSTs.

Every owner-scoped route takes `current_user`; a request for someone else's thing answers 404 (the
catalog raises NotFound), never 403, so ids cannot be probed. Cookie-authenticated writes must come
from our own origin (CSRF); bearer requests need no such check because browsers never add them.
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import urlparse

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from ebbtide.catalog.records import User
from ebbtide.errors import EbbtideError
from ebbtide.safetext import has_control_chars
from ebbtide.services import Services, public_base_url
from ebbtide.web.deps import get_services
from ebbtide.web.hosts import host_allowed

log = logging.getLogger(__name__)

SESSION_COOKIE = "ebbtide_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Unauthorized(EbbtideError):
    """No valid credentials (401)."""


class Forbidden(EbbtideError):
    """Valid credentials, not allowed (403): only for things that are not owner-scoped (the fleet)."""


class CrossOrigin(EbbtideError):
    """A cookie-authenticated write from another origin (403)."""


class TooManyAttempts(EbbtideError):
    """Login throttled (429); `retry_after` seconds go into the Retry-After header."""

    def __init__(self, message: str, retry_after: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


def session_user(services: Services, cookie: str | None) -> User | None:
    """The user of a live server-side session; logout, password change and disable end it."""
    if not cookie or len(cookie) > 200:
        return None
    return services.catalog.user_for_session(cookie)


def _origin_of(url: str) -> str:
    p = urlparse(url)
    return f"{p.scheme}://{p.netloc}".lower()


def same_origin(request: Request, services: Services) -> bool:
    """True when Origin (or Referer) names this server, as reached or as configured."""
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if not claimed or claimed == "null":
        return False
    parsed = urlparse(claimed)
    if not host_allowed(parsed.netloc, request.app.state.allowed_hosts):
        return False
    allowed = {_origin_of(str(request.base_url)), _origin_of(public_base_url(services.settings))}
    return _origin_of(claimed) in allowed


def bearer_user(request: Request, services: Services) -> User | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    if token.startswith("ebt_"):
        return services.catalog.user_for_token(token) if not has_control_chars(token) else None
    verifier = request.app.state.oidc
    if verifier is not None and token.count(".") == 2:
        user: User | None = verifier.user_for(services.catalog, token)
        return user
    return None


def optional_user(request: Request, services: Annotated[Services, Depends(get_services)]) -> User | None:
    """The caller, or None. A bearer header that fails is not silently downgraded to the cookie."""
    if request.headers.get("authorization"):
        user = bearer_user(request, services)
        if user is None:
            raise Unauthorized(
                "the bearer token is not valid", hint="create one with `ebbtide users token NAME`"
            )
        return user
    user = session_user(services, request.cookies.get(SESSION_COOKIE))
    if user is not None and request.method not in SAFE_METHODS and not same_origin(request, services):
        raise CrossOrigin(
            "cross-origin request refused", hint="send writes from the ebbtide pages or with a token"
        )
    return user


def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise Unauthorized("sign in first", hint="send Authorization: Bearer ebt_… or log in at /login")
    return user


def admin_user(user: Annotated[User, Depends(current_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("the fleet is for admins only", hint="ask an admin: `ebbtide users add NAME --admin`")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
AdminUser = Annotated[User, Depends(admin_user)]
OptionalUser = Annotated[User | None, Depends(optional_user)]
ServicesDep = Annotated[Services, Depends(get_services)]


class Me(BaseModel):
    id: str
    name: str
    is_admin: bool


api_router = APIRouter(tags=["auth"])


@api_router.get("/api/me", response_model=Me)
def me(user: CurrentUser) -> Me:
    return Me(id=user.id, name=user.name, is_admin=user.is_admin)


class PasswordIn(BaseModel):
    current: str = Field(min_length=1, max_length=1000)
    new: str = Field(min_length=1, max_length=1000)


@api_router.post("/api/me/password", status_code=204)
def change_password(request: Request, body: PasswordIn, user: CurrentUser, services: ServicesDep) -> Response:
    """Change your own password; every browser session of yours ends (log in again), tokens stay."""
    throttle = request.app.state.login_throttle
    address = client_address(request)
    wait = throttle.retry_after(user.name, address)
    if wait is not None:
        raise TooManyAttempts(
            "too many wrong passwords", retry_after=wait, hint=f"try again in {wait} seconds"
        )
    if services.catalog.check_password(user.name, body.current) is None:
        throttle.failed(user.name, address)
        log.warning("password change refused", extra={"user": user.name, "client": address})
        raise Forbidden("the current password is wrong", hint="type your current password")
    policy = services.settings.web.password_min_length
    services.catalog.set_password(user.id, body.new, min_password_length=policy)
    log.info("password changed", extra={"user": user.name, "client": address})
    resp = Response(status_code=204)
    resp.delete_cookie(SESSION_COOKIE)
    return resp


page_router = APIRouter(include_in_schema=False)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@page_router.post("/login")
def login(
    request: Request,
    services: ServicesDep,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    if not same_origin(request, services):
        raise CrossOrigin("log in from the ebbtide login page", hint="the Origin header did not match")
    address = client_address(request)
    shown = username[:80].encode("unicode_escape").decode("ascii")  # control characters stay visible
    throttle = request.app.state.login_throttle
    wait = throttle.retry_after(username, address)
    if wait is not None:
        log.warning("login throttled", extra={"user": shown, "client": address, "retry_after": wait})
        raise TooManyAttempts(
            "too many failed logins", retry_after=wait, hint=f"try again in {wait} seconds"
        )
    valid = bool(username and password) and not has_control_chars(username)
    user = services.catalog.check_password(username, password) if valid else None
    if user is None:
        throttle.failed(username, address)
        log.warning("login failed", extra={"user": shown, "client": address})
        return RedirectResponse("/login?error=1", status_code=303)
    throttle.succeeded(username)
    ttl = services.settings.web.session_ttl
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(
        SESSION_COOKIE,
        services.catalog.create_session(user.id, ttl),
        max_age=int(ttl),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    log.info("login succeeded", extra={"user": user.name, "client": address})
    return resp


@page_router.post("/logout")
def logout(request: Request, services: ServicesDep) -> Response:
    """Ends the server-side session, so a copied cookie stops working too."""
    if not same_origin(request, services):
        raise CrossOrigin("log out from the ebbtide pages", hint="the Origin header did not match")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and len(cookie) <= 200:
        services.catalog.end_session(cookie)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE)
    return resp
