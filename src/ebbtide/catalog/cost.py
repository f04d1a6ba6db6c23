"""What a worker's life cost: per-second billing with a 60 s minimum (EC2/Fargate style)."""

from __future__ import annotations

MIN_BILLED_S = 60.0


def life_cost(
    started_at: float, stopped_at: float | None, now: float, price_per_hour: float, since: float | None = None
) -> float:
    """Dollars for one life. With `since`, only the part after it counts, and the 60 s minimum
    applies only to lives that began after `since` (an earlier life already paid it)."""
    end = stopped_at if stopped_at is not None else now
    if since is None or started_at >= since:
        seconds = max(MIN_BILLED_S, end - started_at)
    else:
        seconds = max(0.0, end - since)
    return seconds / 3600.0 * price_per_hour
