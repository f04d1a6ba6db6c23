"""`ebbtide doctor`: check a config against the failure modes in the seeds."""

from __future__ import annotations

from typing import Annotated

import typer

from ebbtide.cli import context as ctx
from ebbtide.cli.context import console


def doctor(
    config: Annotated[str | None, typer.Option("--config", "-c", help="ebbtide.yaml to check")] = None,
    job_minutes: Annotated[
        float, typer.Option("--job-minutes", help="longest expected video, minutes")
    ] = 120.0,
    as_json: Annotated[bool, typer.Option("--json", help="print findings as JSON")] = False,
) -> None:
    """Exit 1 when any finding is an error."""
    from ebbtide.config import load_settings
    from ebbtide.doctor.checks import diagnose
    from ebbtide.doctor.report import render, to_json

    path = config or ctx._config_path
    settings = load_settings(path)
    findings = diagnose(settings, job_minutes * 60)
    if as_json:
        console.print_json(to_json(findings))
    else:
        render(findings, console, path or "defaults")
    if any(f.severity == "error" for f in findings):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
