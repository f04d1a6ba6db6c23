"""Login throttling: failed attempts per account and per client address in a sliding window.

Guessing passwords then costs `window` seconds per `max_failures` tries per name, and one address
cannot spray many names. State lives in this process (a replica behind a load balancer counts
its own share); it is bounded in size so a flood of made-up names cannot grow it without end.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque

from ebbtide.clock import SYSTEM_CLOCK, Clock

MAX_KEYS = 100_000


class LoginThrottle:
    def __init__(
        self,
        max_per_account: int,
        max_per_address: int,
        window: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.max_per_account = max_per_account
        self.max_per_address = max_per_address
        self.window = window
        self.clock = clock
        self._fails: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _keys(account: str, address: str) -> tuple[str, str]:
        return "u:" + account.strip().lower()[:200], "a:" + address

    def _wait(self, key: str, limit: int, now: float) -> float:
        q = self._fails.get(key)
        if q is None:
            return 0.0
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self._fails[key]
            return 0.0
        return q[0] + self.window - now if len(q) >= limit else 0.0

    def retry_after(self, account: str, address: str) -> int | None:
        """Whole seconds to wait before another attempt is heard, or None when it may go ahead."""
        acct, addr = self._keys(account, address)
        now = self.clock.now()
        with self._lock:
            wait = max(
                self._wait(acct, self.max_per_account, now), self._wait(addr, self.max_per_address, now)
            )
        return max(1, math.ceil(wait)) if wait > 0 else None

    def failed(self, account: str, address: str) -> None:
        now = self.clock.now()
        with self._lock:
            for key in self._keys(account, address):
                q = self._fails.setdefault(key, deque(maxlen=1000))
                q.append(now)
                self._fails.move_to_end(key)
            while len(self._fails) > MAX_KEYS:
                self._fails.popitem(last=False)

    def succeeded(self, account: str) -> None:
        """A right password clears the account's count (not the address's: sprayers stay slowed)."""
        with self._lock:
            self._fails.pop(self._keys(account, "")[0], None)
