"""Is anything running that will pick up queued work? A pure decision for `ebbtide submit`.

A controller records a decision only when something changes, and new work always changes its
queue view, so a running scaler records one within a tick or two of a submission. A worker
heartbeats every few seconds. If neither happened for a few ticks, nobody is there.
"""

from __future__ import annotations

from collections.abc import Sequence

# Ticks to wait before saying so; also at least this many seconds.
GRACE_TICKS = 3
GRACE_MIN = 5.0
WORKER_FRESH = 60.0  # a worker not heard from in this long is not counted


def nobody_working(
    now: float, since: float, worker_last_seen: Sequence[float], decision_times: Sequence[float],
    interval: float,
) -> bool:
    grace = max(GRACE_MIN, GRACE_TICKS * interval)
    if now - since < grace:
        return False
    if any(now - seen < WORKER_FRESH for seen in worker_last_seen):
        return False
    return not any(at >= since for at in decision_times)
