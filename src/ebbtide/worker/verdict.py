"""Whether a failed attempt is tried again: decided by the error's declared type, never its text.

`Permanent` (bad media, a limit, a validation that will fail again) goes dead on its first attempt;
`Transient` (network, spot, lost lease, a host that killed a healthy run) and anything undeclared
are retried with backoff until `max_receives`.
"""

from __future__ import annotations

import enum

from ebbtide.errors import Permanent, Transient


class Verdict(enum.Enum):
    RETRY = "retry"
    DEAD = "dead"


def verdict(error: BaseException, receive_count: int, max_receives: int) -> Verdict:
    """RETRY or DEAD for an attempt that failed with `error` on its `receive_count`-th delivery."""
    if isinstance(error, Permanent) and not isinstance(error, Transient):
        return Verdict.DEAD
    return Verdict.DEAD if receive_count >= max_receives else Verdict.RETRY
