"""`ebbtide queue stats`, `ebbtide dlq list`, `ebbtide dlq redrive [IDS...]`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.table import Table

from ebbtide.cli.context import console, settings
from ebbtide.queue import Queue, open_queue

EXCERPT = 60


@contextmanager
def _queue() -> Iterator[Queue]:
    q = open_queue(settings().queue)
    try:
        yield q
    finally:
        q.close()


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _excerpt(body: str) -> str:
    flat = " ".join(body.split())
    return flat if len(flat) <= EXCERPT else flat[: EXCERPT - 1] + "…"


def register(app: typer.Typer) -> None:
    queue_app = typer.Typer(help="Inspect the job queue.", no_args_is_help=True)
    dlq_app = typer.Typer(help="Dead letters: list them, send them back to the queue.", no_args_is_help=True)

    @queue_app.command("stats")
    def stats() -> None:
        """Visible, in-flight, delayed and dead messages, and the age of the oldest visible one."""
        with _queue() as q:
            s = q.stats()
        table = Table(title=f"queue {settings().queue.url}")
        for col in ("visible", "in flight", "delayed", "dead", "backlog", "oldest"):
            table.add_column(col, justify="right")
        table.add_row(
            str(s.visible), str(s.in_flight), str(s.delayed), str(s.dead), str(s.backlog), _age(s.oldest_age)
        )
        console.print(table)

    @dlq_app.command("list")
    def list_(
        limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="show at most this many")] = 100,
    ) -> None:
        """Dead letters, oldest first, with why each was set aside."""
        with _queue() as q:
            dead = q.dead_letters(limit=limit)
        if not dead:
            console.print("no dead letters")
            return
        table = Table(title=f"{len(dead)} dead letter(s)")
        table.add_column("id", no_wrap=True)
        table.add_column("receives", justify="right")
        table.add_column("dead for", justify="right")
        table.add_column("reason")
        table.add_column("body")
        now = time.time()
        for d in dead:
            table.add_row(
                d.message_id, str(d.receive_count), _age(now - d.dead_at), d.reason, _excerpt(d.body)
            )
        console.print(table)

    @dlq_app.command("redrive")
    def redrive(
        ids: Annotated[list[str] | None, typer.Argument(help="message ids; none = every dead letter")] = None,
    ) -> None:
        """Send dead letters back to the queue with a fresh receive count; their jobs (and media)
        go back to queued so a worker runs them again."""
        from ebbtide.catalog import open_catalog
        from ebbtide.reconcile import redrive as redrive_jobs

        catalog = open_catalog(settings().catalog.url)
        try:
            with _queue() as q:
                moved, requeued = redrive_jobs(q, catalog, ids or None)
        finally:
            catalog.close()
        wanted = f" of {len(ids)}" if ids else ""
        console.print(f"redrove {moved}{wanted} dead letter(s); {requeued} job(s) queued again")
        if ids and moved < len(ids):
            console.print("[yellow]some ids were not in the dead letters; see `ebbtide dlq list`[/]")

    app.add_typer(queue_app, name="queue")
    app.add_typer(dlq_app, name="dlq")
