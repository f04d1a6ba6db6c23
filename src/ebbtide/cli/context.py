"""Shared CLI state: the chosen config file and the console."""

from __future__ import annotations

from functools import lru_cache

from rich.console import Console

from ebbtide.config import Settings, load_settings

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

_config_path: str | None = None


def set_config_path(path: str | None) -> None:
    global _config_path
    _config_path = path
    settings.cache_clear()


def config_path() -> str | None:
    """The config file named by --config, if any (child processes are pointed at the same one)."""
    return _config_path


@lru_cache(maxsize=1)
def settings() -> Settings:
    return load_settings(_config_path)
