"""Placeholder until its part lands; replaced by the part's owner."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    return None
