"""One backend's availability: one log line when it goes down, one when it is back, and backoff.

Backends call `failed(error)` when their driver reports a lost connection and raise what it
returns (a `BackendUnavailable`); they call `ok()` after a call that worked. While down,
`may_try()` spaces reconnect attempts (0.5 s doubling to 2 s) so a tight caller loop does not
hammer a server that is restarting; the cap is short because a server that restarts is usually
back within seconds, and every second of backoff after it returned is a second of lost work. The
error carries `retry_in` (when the next attempt is allowed) so callers that retry line up with
this schedule instead of stacking a backoff of their own on top. The log says "down" once per
outage, not once per tick.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ebbtide.errors import BackendUnavailable

log = logging.getLogger("ebbtide.outage")

BACKOFF_BASE = 0.5
BACKOFF_MAX = 2.0


def reconnect_delay(failures: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_MAX) -> float:
    """Seconds before the next reconnect after `failures` consecutive failures (pure)."""
    if failures <= 0:
        return 0.0
    return float(min(cap, base * 2 ** (failures - 1)))


class Outage:
    def __init__(
        self, part: str, name: str, hint: str = "", monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.part, self.name, self.hint = part, name, hint
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self.failures = 0
        self.since: float | None = None  # monotonic time the current outage began
        self._next_try = 0.0
        self.last_error = ""

    @property
    def down(self) -> bool:
        return self.since is not None

    def may_try(self) -> bool:
        """False while the backoff after the last failure has not run out."""
        with self._lock:
            return self.since is None or self._monotonic() >= self._next_try

    def unavailable(self) -> BackendUnavailable:
        """The error to raise without trying (during backoff)."""
        with self._lock:
            retry_in = max(0.0, self._next_try - self._monotonic()) if self.since is not None else 0.0
        return BackendUnavailable(
            f"the {self.part} ({self.name}) is unavailable: {self.last_error}", self.hint or None,
            self.part, retry_in,
        )

    def failed(self, error: BaseException) -> BackendUnavailable:
        now = self._monotonic()
        with self._lock:
            self.failures += 1
            self._next_try = now + reconnect_delay(self.failures)
            text = " ".join(str(error).split())  # one line, whatever the driver's message holds
            self.last_error = f"{type(error).__name__}: {text}"[:300]
            first = self.since is None
            if first:
                self.since = now
        if first:
            log.warning(
                "%s down: %s; reconnecting with backoff", self.part, self.last_error,
                extra={"part": self.part, "backend": self.name},
            )
        return self.unavailable()

    def ok(self) -> None:
        if self.since is None:  # the common case, without the lock
            return
        with self._lock:
            since, self.since, self.failures, self._next_try = self.since, None, 0, 0.0
        if since is not None:
            log.warning(
                "%s back after %.1fs", self.part, self._monotonic() - since,
                extra={"part": self.part, "backend": self.name},
            )

    @contextmanager
    def guard(
        self, errors: tuple[type[BaseException], ...], on_error: Callable[[], object] | None = None
    ) -> Iterator[None]:
        """Run a backend call: skip it during backoff, map `errors` (the driver's connection
        errors, declared by the backend module) to BackendUnavailable, and note a success."""
        if not self.may_try():
            raise self.unavailable()
        try:
            yield
        except errors as e:
            if on_error is not None:
                on_error()
            raise self.failed(e) from e
        self.ok()
