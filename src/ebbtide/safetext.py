"""Text from strangers: control characters (NUL above all) are refused before they reach a database.

PostgreSQL rejects NUL in text columns with a server error, and other control characters make
log lines and pages lie; every layer that takes user text asks this one function.
"""

from __future__ import annotations

import re

# C0 controls except tab/newline/carriage return, DEL, and C1 controls
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CONTROL_STRICT = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def has_control_chars(text: str, allow_whitespace: bool = False) -> bool:
    """True when `text` holds a control character; tab/newline/CR pass only with allow_whitespace."""
    return bool((_CONTROL if allow_whitespace else _CONTROL_STRICT).search(text))
