"""The web app: one FastAPI app, deployable whole or as separate services by route prefix.

`create_app(services)` serves everything; `create_app(services, parts={"stream"})` serves only
`/api/stream/…` (+ `/files/…`, `/health`) so a read-heavy streaming tier can scale apart from the
gallery tier behind a path-routing load balancer (seed 004's ALB rules).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ebbtide.errors import ConfigError
from ebbtide.services import Services
from ebbtide.web import auth, cors, docs, errors, files, fleet, gallery, health, metrics, pages, stream
from ebbtide.web.fastpath import FastPath
from ebbtide.web.guards import Guards, page_csp
from ebbtide.web.headers import DefaultHeaders
from ebbtide.web.history import History
from ebbtide.web.hosts import allowed_hosts
from ebbtide.web.oidc import OidcVerifier
from ebbtide.web.pages import HERE
from ebbtide.web.playcache import PlaylistCache
from ebbtide.web.sweeper import Sweeper
from ebbtide.web.throttle import LoginThrottle

if TYPE_CHECKING:
    from ebbtide.events.sender import Sender

ALL_PARTS = frozenset({"gallery", "stream", "fleet", "pages"})


def _start_webhooks(services: Services) -> Sender | None:
    """The outbox sender on a thread of the gallery tier (one per deployment: run one such tier,
    or `ebbtide events` on its own)."""
    from ebbtide.catalog.sql import SqlCatalog

    if not services.settings.events.webhook_urls or not isinstance(services.catalog, SqlCatalog):
        return None
    from ebbtide.events.sender import Sender

    sender = Sender(services.catalog, services.settings.events)
    threading.Thread(target=sender.run, name="ebbtide-webhooks", daemon=True).start()
    return sender


def create_app(services: Services, parts: set[str] | None = None) -> FastAPI:
    chosen = set(ALL_PARTS if parts is None else parts)
    unknown = chosen - ALL_PARTS
    if unknown or not chosen:
        raise ConfigError(
            f"unknown web parts: {', '.join(sorted(unknown)) or '(none chosen)'}",
            hint=f"choose from {', '.join(sorted(ALL_PARTS))}",
        )
    if not services.settings.web.session_secret:
        raise ConfigError("web.session_secret is empty", hint="set web.session_secret in ebbtide.yaml")
    history = History(services, interval=services.settings.fleet.interval)
    sweeper = Sweeper(services)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if "fleet" in chosen:
            history.start()
        sender = _start_webhooks(services) if "gallery" in chosen else None
        if "gallery" in chosen:
            sweeper.start()
        try:
            yield
        finally:
            history.stop()
            sweeper.stop()
            if sender is not None:
                sender.stop()

    app = FastAPI(
        title="ebbtide",
        version="0.1.0",
        summary="Uploads, HLS streaming and the worker fleet",
        lifespan=lifespan,
        docs_url=None,  # served by web/docs.py from vendored assets, to admins by default
        redoc_url=None,
        openapi_url=None,
    )
    app.state.services = services
    app.state.parts = frozenset(chosen)
    app.state.history = history
    app.state.metrics = metrics.registry_for(services)
    oidc = services.settings.web.oidc
    app.state.oidc = OidcVerifier(oidc) if oidc else None
    web = services.settings.web
    app.state.allowed_hosts = allowed_hosts(web)
    app.state.login_throttle = LoginThrottle(
        web.login_max_failures, web.login_max_failures_per_address, web.login_window
    )
    errors.install(app)
    app.state.playlists = PlaylistCache()
    # innermost: the viewers' hot routes skip routing, after Guards, headers and CORS have run
    if web.fast_path:
        app.add_middleware(FastPath, services=services, parts=app.state.parts, playlists=app.state.playlists)
    app.add_middleware(
        Guards,
        allowed=app.state.allowed_hosts,
        body_timeout=web.body_timeout,
        csp=page_csp(services.settings),
    )

    app.add_middleware(DefaultHeaders)

    cors.install(app, services.settings.cors)  # added last: outermost, so preflights skip routing
    app.include_router(health.router)
    app.include_router(auth.api_router)
    app.include_router(docs.router)
    if "gallery" in chosen:
        app.include_router(gallery.router)
    if "stream" in chosen:
        app.include_router(stream.router)
    if chosen & {"gallery", "stream"}:
        app.include_router(files.router)
    if "fleet" in chosen:
        app.include_router(fleet.router)
        app.include_router(metrics.router)
    if "pages" in chosen:
        app.include_router(auth.page_router)
        app.include_router(pages.router)
        app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    return app
