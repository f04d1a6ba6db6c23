"""Structured log lines for worker processes: `time level logger message key=value …`.

The `extra=` fields every module passes become key=value pairs, so logs grep and parse without a
logging framework. Secrets are never passed as extras in the first place.
"""

from __future__ import annotations

import logging
import sys

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}.{int(record.msecs):03d}"
        base = f"{when} {record.levelname.lower()} {record.name}: {record.getMessage()}"
        pairs = [f"{k}={_quote(v)}" for k, v in vars(record).items() if k not in _STANDARD]
        if pairs:
            base += " " + " ".join(pairs)
        if record.exc_info:
            base += "\n" + self.formatException(record.exc_info)
        return base


def _quote(v: object) -> str:
    s = str(v)
    return f'"{s}"' if (" " in s or not s) else s


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
