"""`ebbtide config show|check`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from ebbtide.cli.context import console, settings


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Show or check the configuration.", no_args_is_help=True)

    @group.command("check")
    def check() -> None:
        """Load the config and report errors (exit 2) or OK."""
        s = settings()
        console.print(
            f"[green]config OK[/] — queue {s.queue.url}, catalog {s.catalog.url}, store {s.store.url}"
        )

    @group.command("show")
    def show() -> None:
        """Print the effective config (defaults filled in, secrets hidden)."""
        data = settings().model_dump(mode="json")
        for section, key in (("store", "secret"), ("web", "session_secret")):
            if data.get(section, {}).get(key):
                data[section][key] = "***"
        console.print(yaml.safe_dump(data, sort_keys=False), end="")

    @group.command("reference")
    def reference(
        write: Annotated[
            Path | None, typer.Option("--write", help="write the page here instead of printing it")
        ] = None,
    ) -> None:
        """Print docs/config.md: every key with its default and description, from the schema."""
        from ebbtide.config.reference import render_reference

        text = render_reference()
        if write is None:
            print(text, end="")
            return
        write.write_text(text)
        console.print(f"wrote {write}")

    app.add_typer(group, name="config")
