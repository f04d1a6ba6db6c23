"""Showing a generated password once: on the terminal, or into a 0600 file when output is captured.

`ebbtide up` under systemd, docker or `> up.log` writes its stdout to logs that many people can
read and that live for months; a password must not land there.
"""

from __future__ import annotations

import os
from pathlib import Path

from ebbtide.cli.context import console

PASSWORD_FILE = "first-password.txt"


def write_private(path: Path, text: str) -> None:
    """Create or replace `path` readable by its owner only (0600), whatever the umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def reveal_password(name: str, password: str, data_dir: Path) -> None:
    if console.is_terminal:
        console.print(f"login: [bold]{name}[/] / [bold]{password}[/] (shown once; keep it)")
        return
    path = data_dir / PASSWORD_FILE
    write_private(path, f"{name} {password}\n")
    console.print(
        f"login: [bold]{name}[/]; its password is in {path} (mode 0600; delete the file once read)",
        soft_wrap=True,  # a path must stay on one line to be copied
    )
