"""Shared CLI state: the chosen config file and the console."""

from __future__ import annotations

from functools import lru_cache

from rich.console import Console

from ebbtide.config import Settings, load_settings


def _console(stderr: bool = False) -> Console:
    """Rich wraps at 80 columns when output is not a terminal; logs and pipes get whole lines."""
    c = Console(stderr=stderr, highlight=False)
    if not c.is_terminal:
        c.soft_wrap = True
    return c


console = _console()
err_console = _console(stderr=True)

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


def with_web_address(s: Settings, host: str | None, port: int | None) -> Settings:
    """`--host/--port` of `up` and `serve` win over web.host/web.port."""
    given = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    return s.model_copy(update={"web": s.web.model_copy(update=given)}) if given else s
