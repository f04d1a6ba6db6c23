"""Long polling for backends without a server-side wait (SQS has its own WaitTimeSeconds).

A receive returns as soon as a message can be leased: the backend's `pause` wakes early on a
send (a condition variable, a Redis list, a PostgreSQL NOTIFY) and otherwise polls, backing off,
for leases that expired and delays that ran out.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ebbtide.clock import Clock
from ebbtide.queue.base import Delivery

POLL_MIN = 0.01  # first pause between looks, growing by half each time up to the backend's maximum


def long_poll(
    take: Callable[[], list[Delivery]],
    pause: Callable[[float], object],
    wait: float,
    clock: Clock,
    max_interval: float,
) -> list[Delivery]:
    got = take()
    if got or wait <= 0:
        return got
    # Two deadlines: the injected clock's, and a real one so a frozen VirtualClock cannot hang us.
    deadline = clock.monotonic() + wait
    real_deadline = time.monotonic() + wait
    interval = POLL_MIN
    while True:
        remaining = min(deadline - clock.monotonic(), real_deadline - time.monotonic())
        if remaining <= 0:
            return []
        pause(min(interval, remaining))
        got = take()
        if got:
            return got
        interval = min(max_interval, interval * 1.5)
