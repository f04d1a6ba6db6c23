"""Value types shared by config sections: durations, sizes, URLs."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from `90`, `90s`, `10m`, `2h`, `1d`, `250ms`; a plain number is seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration such as 90s, 10m or 2h")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration must not be negative")
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    raise ValueError(f"{value!r} is not a duration; use a number of seconds or 90s, 10m, 2h, 1d")


def format_duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


Duration = Annotated[float, BeforeValidator(parse_duration)]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)?\s*$", re.IGNORECASE)


def parse_size(value: Any) -> int:
    """Bytes from `5242880`, `5MB`, `5MiB`, `2G` (binary units)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        m = _SIZE.match(value)
        if m:
            mult = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}[m.group(2).lower()]
            return int(float(m.group(1)) * mult)
    raise ValueError(f"{value!r} is not a size; use bytes or 5MB, 2GB")


Size = Annotated[int, BeforeValidator(parse_size)]


def format_size(size: int) -> str:
    """The inverse of parse_size for whole binary units: 64MB, 8GB; other values stay bytes."""
    for unit, mult in (("TB", 1024**4), ("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= mult and size % mult == 0:
            return f"{size // mult}{unit}"
    return str(size)
