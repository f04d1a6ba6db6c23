"""Argument fix-ups before Click parses: `--config` is accepted after the subcommand too.

Click reads a group's options only before the subcommand, so `ebbtide config check --config X` was
refused while the README promises every command takes `--config`. Moving the option to the front
keeps one definition of it (the root callback). `doctor` and `sim` also declare their own `--config`
with the same meaning; for them the root value is used when theirs is absent.
"""

from __future__ import annotations

CONFIG_FLAGS = ("--config", "-c")


def hoist_config(argv: list[str]) -> list[str]:
    """Move `--config X`, `--config=X` and `-c X` found after the subcommand to the front."""
    moved: list[str] = []
    rest: list[str] = []
    seen_command = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg in CONFIG_FLAGS and i + 1 < len(argv):
            (moved if seen_command else rest).extend([arg, argv[i + 1]])
            i += 2
            continue
        if arg.startswith("--config="):
            (moved if seen_command else rest).append(arg)
        else:
            seen_command = seen_command or not arg.startswith("-")
            rest.append(arg)
        i += 1
    return moved + rest
