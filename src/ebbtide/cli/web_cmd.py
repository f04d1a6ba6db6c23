"""`ebbtide serve` and `ebbtide users add|token|list`: the web app and its accounts."""

from __future__ import annotations

import secrets
from typing import Annotated

import typer
from rich.table import Table

from ebbtide.catalog.base import Catalog
from ebbtide.cli.context import console, settings, with_web_address
from ebbtide.errors import EbbtideError, NotFound

users_app = typer.Typer(help="Accounts for the web app and its API tokens.", no_args_is_help=True)


def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default: web.host)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: web.port)")] = None,
    parts: Annotated[
        str | None, typer.Option(help="serve only these parts, e.g. gallery,stream (default: all)")
    ] = None,
) -> None:
    """Run the web app (gallery, streaming, fleet APIs, pages) with uvicorn."""
    from ebbtide.services import open_services, public_base_url
    from ebbtide.web.app import create_app
    from ebbtide.web.server import bind, serve

    s = with_web_address(settings(), host, port)
    chosen = {p.strip() for p in parts.split(",") if p.strip()} if parts else None
    sock = bind(s.web.host, s.web.port)
    services = open_services(s)
    try:
        app = create_app(services, parts=chosen)
        console.print(f"ebbtide web on [bold]{public_base_url(s)}[/] (Ctrl-C stops)")
        serve(app, sock)
    finally:
        services.close()
        sock.close()


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
        user = catalog.create_user(name, password=pw, is_admin=admin)
        console.print(f"created user [bold]{user.name}[/]{' (admin)' if admin else ''}")
        if generated:
            console.print(f"password: [bold]{pw}[/]  (shown once)")
    finally:
        catalog.close()


@users_app.command("token")
def users_token(
    name: Annotated[str, typer.Argument(help="login name")],
    label: Annotated[str, typer.Option(help="what the token is for")] = "cli",
) -> None:
    """Create an API token (Authorization: Bearer ebt_…); printed once, only its hash is stored."""
    catalog = _catalog()
    try:
        user = catalog.find_user(name)
        if user is None:
            raise NotFound(f"no user {name!r}", hint=f"ebbtide users add {name}")
        token = catalog.create_token(user.id, label=label)
        console.print(token, soft_wrap=True)
    finally:
        catalog.close()


@users_app.command("list")
def users_list() -> None:
    """Every user, and who is an admin."""
    catalog = _catalog()
    try:
        table = Table("name", "admin", "id")
        for u in catalog.list_users():
            table.add_row(u.name, "yes" if u.is_admin else "", u.id)
        console.print(table)
    finally:
        catalog.close()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(users_app, name="users")
