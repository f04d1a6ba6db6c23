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
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import BaseModel

from ebbtide.catalog.records import User
from ebbtide.errors import EbbtideError, NotFound
from ebbtide.services import Services, public_base_url
from ebbtide.web.deps import get_services

log = logging.getLogger(__name__)

SESSION_COOKIE = "ebbtide_session"
SESSION_MAX_AGE = 14 * 24 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Unauthorized(EbbtideError):
    """No valid credentials (401)."""


class Forbidden(EbbtideError):
    """Valid credentials, not allowed (403): only for things that are not owner-scoped (the fleet)."""


class CrossOrigin(EbbtideError):
    """A cookie-authenticated write from another origin (403)."""


def _serializer(services: Services) -> URLSafeTimedSerializer:
    secret = services.settings.web.session_secret or ""
    return URLSafeTimedSerializer(secret, salt="ebbtide-session")


def make_session(services: Services, user: User) -> str:
    return _serializer(services).dumps({"u": user.id})


def session_user(services: Services, cookie: str | None) -> User | None:
    if not cookie:
        return None
    try:
        data = _serializer(services).loads(cookie, max_age=SESSION_MAX_AGE)
        return services.catalog.get_user(str(data["u"]))
    except (BadSignature, NotFound, KeyError, TypeError):
        return None


def _origin_of(url: str) -> str:
    p = urlparse(url)
    return f"{p.scheme}://{p.netloc}".lower()


def same_origin(request: Request, services: Services) -> bool:
    """True when Origin (or Referer) names this server, as reached or as configured."""
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if not claimed or claimed == "null":
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
        return services.catalog.user_for_token(token)
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


page_router = APIRouter(include_in_schema=False)


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
    user = services.catalog.check_password(username, password) if username and password else None
    if user is None:
        log.info("login refused", extra={"user": username[:80]})
        return RedirectResponse("/login?error=1", status_code=303)
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(
        SESSION_COOKIE,
        make_session(services, user),
        max_age=SESSION_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    log.info("login", extra={"user": user.name})
    return resp


@page_router.post("/logout")
def logout(request: Request, services: ServicesDep) -> Response:
    if not same_origin(request, services):
        raise CrossOrigin("log out from the ebbtide pages", hint="the Origin header did not match")
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE)
    return resp
