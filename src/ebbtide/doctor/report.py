"""Print the doctor's findings: one block per finding, errors first, and a one-line verdict."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

from rich.console import Console

from ebbtide.doctor.checks import Finding


def render(findings: Sequence[Finding], console: Console, source: str) -> None:
    if not findings:
        console.print(f"[green]✓[/] {source}: no known failure mode found")
        return
    for f in findings:
        color = "red" if f.severity == "error" else "yellow"
        console.print(f"[bold {color}]{f.severity}[/] [{color}]{f.code}[/]: {f.what}")
        console.print(f"  [dim]why:[/] {f.why}")
        console.print(f"  [dim]fix:[/] {f.fix}")
    errors = sum(1 for f in findings if f.severity == "error")
    console.print(f"{source}: {errors} error(s), {len(findings) - errors} warning(s)")


def to_json(findings: Sequence[Finding]) -> str:
    return json.dumps([asdict(f) for f in findings], indent=2)
