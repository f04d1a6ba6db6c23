"""`ebbtide events`: send the webhook outbox (signed, retried, in order per media) until stopped."""

from __future__ import annotations

import signal
from typing import Annotated

import typer

from ebbtide.cli.context import console, settings
from ebbtide.errors import EbbtideError


def events(
    once: Annotated[bool, typer.Option("--once", help="one pass over due events, then exit")] = False,
    interval: Annotated[float, typer.Option("--interval", help="seconds between passes when idle")] = 0.5,
) -> None:
    """Deliver state-change events to events.webhook_urls; a restart resends what was in flight."""
    from ebbtide.catalog import open_catalog
    from ebbtide.events.sender import Sender

    s = settings()
    if not s.events.webhook_urls:
        raise EbbtideError("no webhook URLs are configured", hint="set events.webhook_urls in ebbtide.yaml")
    catalog = open_catalog(s.catalog.url)
    sender = Sender(catalog, s.events)
    try:
        if once:
            console.print(f"delivered {sender.tick()} event(s); {sender.pending()} pending")
            return
        signal.signal(signal.SIGTERM, lambda *_: sender.stop())
        console.print(f"sending events to {len(s.events.webhook_urls)} webhook URL(s); Ctrl-C stops")
        try:
            sender.run(interval)
        except KeyboardInterrupt:
            sender.stop()
    finally:
        catalog.close()


def register(app: typer.Typer) -> None:
    app.command("events")(events)
