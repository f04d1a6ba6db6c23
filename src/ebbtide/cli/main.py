"""The `ebbtide` entry point: registers every command group and turns errors into one line + hint."""

from __future__ import annotations

import importlib
import sys
from typing import Annotated

import typer

from ebbtide.cli.argv import hoist_config
from ebbtide.cli.context import err_console, set_config_path
from ebbtide.errors import EbbtideError, disk_full

app = typer.Typer(
    name="ebbtide",
    help="Uploads become HLS ladders on a worker fleet that scales from zero and back.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module defines register(app). Order is the order of `ebbtide --help`.
COMMAND_MODULES = (
    "ebbtide.cli.config_cmd",
    "ebbtide.cli.queue_cmd",
    "ebbtide.cli.media_cmd",
    "ebbtide.cli.worker_cmd",
    "ebbtide.cli.fleet_cmd",
    "ebbtide.cli.sim_cmd",
    "ebbtide.cli.doctor_cmd",
    "ebbtide.cli.aws_cmd",
    "ebbtide.cli.web_cmd",
    "ebbtide.cli.events_cmd",
)


@app.callback()
def _root(
    config: Annotated[
        str | None, typer.Option("--config", "-c", help="ebbtide.yaml path (default: $EBBTIDE_CONFIG)")
    ] = None,
) -> None:
    set_config_path(config)


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def _fail(e: EbbtideError) -> None:
    err_console.print(f"[bold red]error:[/] {e.message}")
    if e.hint:
        err_console.print(f"[dim]hint: {e.hint}[/]")
    sys.exit(2)


def main() -> None:
    try:
        app(args=hoist_config(sys.argv[1:]), prog_name="ebbtide")
    except EbbtideError as e:
        _fail(e)
    except OSError as e:
        full = disk_full(e)  # out of space: one line, not a traceback
        if full is None:
            raise
        _fail(full)


if __name__ == "__main__":
    main()
