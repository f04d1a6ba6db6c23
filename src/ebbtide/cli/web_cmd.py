"""`ebbtide serve` and `ebbtide users …`: the web app and its accounts.

`users passwd` is also how a lost admin password is reset: whoever can run the CLI against the
catalog is trusted already. Secrets (generated passwords, tokens) go to the terminal only.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ebbtide.catalog.base import Catalog
from ebbtide.catalog.records import User
from ebbtide.cli.context import config_path, console, settings, with_web_address
from ebbtide.config import parse_duration
from ebbtide.errors import EbbtideError, NotFound

users_app = typer.Typer(help="Accounts for the web app and its API tokens.", no_args_is_help=True)


def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default: web.host)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: web.port)")] = None,
    parts: Annotated[
        str | None, typer.Option(help="serve only these parts, e.g. gallery,stream (default: all)")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="server processes (default: web.workers, else one per core, ≤ 8)"),
    ] = None,
) -> None:
    """Run the web app (gallery, streaming, fleet APIs, pages) with uvicorn."""
    from ebbtide.services import open_services, public_base_url
    from ebbtide.web.app import create_app
    from ebbtide.web.server import bind, serve, serve_processes, worker_count

    s = with_web_address(settings(), host, port)
    chosen = {p.strip() for p in parts.split(",") if p.strip()} if parts else None
    n = worker_count(workers or s.web.workers)
    sock = bind(s.web.host, s.web.port)
    if n > 1:
        try:
            console.print(f"ebbtide web on [bold]{public_base_url(s)}[/] with {n} processes (Ctrl-C stops)")
            serve_processes(sock, n, config_path=config_path(), host=s.web.host, port=s.web.port, parts=parts)
        finally:
            sock.close()
        return
    services = open_services(s)
    try:
        app = create_app(services, parts=chosen)
        console.print(f"ebbtide web on [bold]{public_base_url(s)}[/] (Ctrl-C stops)")
        serve(app, sock)
    finally:
        services.close()
        sock.close()


def nginx_conf_cmd(
    listen: Annotated[str, typer.Option(help="what nginx listens on, e.g. 80 or 0.0.0.0:8080")] = "8080",
    upstream: Annotated[
        str | None, typer.Option(help="the app's address (default: web.host:web.port)")
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="cache signed media in this folder (an edge cache in nginx)")
    ] = None,
) -> None:
    """Print nginx config (include it in http {}) that fronts `ebbtide serve` and serves files itself.

    Set web.accel_redirect to the internal prefix it uses (/_ebbtide_files/) so the app hands
    authorised file requests to nginx (X-Accel-Redirect) instead of streaming them.
    """
    from urllib.parse import unquote, urlsplit

    from ebbtide.web.nginx import nginx_conf

    s = settings()
    url = urlsplit(s.store.url)
    if url.scheme != "file":
        raise EbbtideError(
            f"store.url {s.store.url!r} is not a local file store",
            hint="the nginx hand-off serves file:// stores; put a CDN in front of S3 instead",
        )
    prefix = s.web.accel_redirect or "/_ebbtide_files/"
    up = upstream or f"{s.web.host}:{s.web.port}"
    text = nginx_conf(Path(unquote(url.path)), up, listen=listen, internal_prefix=prefix, cache_dir=cache_dir)
    print(text, end="")


def _catalog() -> Catalog:
    from ebbtide.catalog import open_catalog

    return open_catalog(settings().catalog.url)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="login name")],
    admin: Annotated[bool, typer.Option("--admin", help="may see the fleet")] = False,
    password: Annotated[
        str | None, typer.Option(help="password (default: generated and printed once)")
    ] = None,
) -> None:
    """Create a user; prints the password once when it was generated."""
    if not name.strip() or len(name) > 80:
        raise EbbtideError("a user name must be 1 to 80 characters", hint="e.g. ebbtide users add alice")
    catalog = _catalog()
    try:
        if catalog.find_user(name) is not None:
            raise EbbtideError(f"user {name!r} already exists", hint=f"ebbtide users token {name}")
        generated = password is None
        pw = password or secrets.token_urlsafe(12)
        user = catalog.create_user(
            name, password=pw, is_admin=admin, min_password_length=settings().web.password_min_length
        )
        console.print(f"created user [bold]{user.name}[/]{' (admin)' if admin else ''}")
        if generated:
            console.print(f"password: [bold]{pw}[/]  (shown once)")
    finally:
        catalog.close()


def _user(catalog: Catalog, name: str) -> User:
    user = catalog.find_user(name)
    if user is None:
        raise NotFound(f"no user {name!r}", hint="see `ebbtide users list`")
    return user


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else ""


@users_app.command("token")
def users_token(
    name: Annotated[str, typer.Argument(help="login name")],
    label: Annotated[str, typer.Option(help="what the token is for")] = "cli",
    expires: Annotated[
        str | None, typer.Option(help="lifetime such as 30d or 12h (default: until revoked)")
    ] = None,
) -> None:
    """Create an API token (Authorization: Bearer ebt_…); printed once, only its hash is stored."""
    try:
        lifetime = parse_duration(expires) if expires else None
    except ValueError as e:
        raise EbbtideError(str(e), hint="e.g. --expires 30d") from None
    catalog = _catalog()
    try:
        user = _user(catalog, name)
        expires_at = time.time() + lifetime if lifetime else None
        token = catalog.create_token(user.id, label=label, expires_at=expires_at)
        console.print(token, soft_wrap=True)
    finally:
        catalog.close()


@users_app.command("tokens")
def users_tokens(name: Annotated[str, typer.Argument(help="login name")]) -> None:
    """A user's API tokens: id, label, created, expiry and whether each still works."""
    catalog = _catalog()
    try:
        user = _user(catalog, name)
        table = Table("id", "label", "created", "expires", "state", title=f"tokens of {user.name}")
        now = time.time()
        for t in catalog.list_tokens(user.id):
            state = "revoked" if t.revoked_at else ("active" if t.active(now) else "expired")
            table.add_row(t.id, t.label, _when(t.created_at), _when(t.expires_at) or "never", state)
        console.print(table)
    finally:
        catalog.close()


@users_app.command("revoke")
def users_revoke(
    token_id: Annotated[str, typer.Argument(help="token id from `ebbtide users tokens NAME`")],
) -> None:
    """Revoke one API token at once, by its id."""
    catalog = _catalog()
    try:
        t = catalog.revoke_token_id(token_id)
        console.print(f"revoked token [bold]{t.id}[/] ({t.label or 'no label'})")
    finally:
        catalog.close()


@users_app.command("passwd")
def users_passwd(
    name: Annotated[str, typer.Argument(help="login name (also resets a lost admin password)")],
    password: Annotated[
        str | None, typer.Option(help="new password (default: generated and printed once)")
    ] = None,
) -> None:
    """Set a new password; every browser session of the user ends."""
    catalog = _catalog()
    try:
        user = _user(catalog, name)
        pw = password or secrets.token_urlsafe(12)
        catalog.set_password(user.id, pw, min_password_length=settings().web.password_min_length)
        console.print(f"password of [bold]{user.name}[/] changed; their sessions ended")
        if password is None:
            console.print(f"password: [bold]{pw}[/]  (shown once)")
    finally:
        catalog.close()


@users_app.command("disable")
def users_disable(
    name: Annotated[str, typer.Argument(help="login name")],
    enable: Annotated[bool, typer.Option("--enable", help="enable the user again")] = False,
) -> None:
    """Lock a user out: login refused, sessions ended, tokens refused while disabled."""
    catalog = _catalog()
    try:
        user = _user(catalog, name)
        catalog.set_disabled(user.id, not enable)
        console.print(f"user [bold]{user.name}[/] {'enabled' if enable else 'disabled'}")
    finally:
        catalog.close()


@users_app.command("list")
def users_list() -> None:
    """Every user, and who is an admin."""
    catalog = _catalog()
    try:
        table = Table("name", "admin", "disabled", "id")
        for u in catalog.list_users():
            table.add_row(u.name, "yes" if u.is_admin else "", "yes" if u.disabled else "", u.id)
        console.print(table)
    finally:
        catalog.close()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("nginx-conf")(nginx_conf_cmd)
    app.add_typer(users_app, name="users")
