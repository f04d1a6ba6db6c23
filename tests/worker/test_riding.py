"""The retry rules of an outage, as pure as they get: backoff, give-up, stop, one line per outage."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from ebbtide.errors import BackendUnavailable, EbbtideError
from ebbtide.outage import BACKOFF_MAX, Outage, reconnect_delay
from ebbtide.worker.riding import RETRY_FLOOR, retry_pause, ride_out


def test_reconnect_delay_doubles_up_to_the_cap() -> None:
    assert [reconnect_delay(n) for n in range(6)] == [0.0, 0.5, 1.0, 2.0, 2.0, 2.0]


def test_ride_out_retries_only_backend_unavailable_and_gives_up_after_its_budget() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise BackendUnavailable("down", part="queue")
        return "ok"

    assert ride_out(flaky, "flaky", budget=10) == "ok" and len(calls) == 3

    def bad_input() -> None:
        calls.append(1)
        raise EbbtideError("bad input")  # not an outage: no retry

    calls.clear()
    with pytest.raises(EbbtideError):
        ride_out(bad_input, "bad", budget=10)
    assert len(calls) == 1

    def down() -> None:
        raise BackendUnavailable("down", part="catalog")

    t0 = time.monotonic()
    with pytest.raises(BackendUnavailable):
        ride_out(down, "down", budget=1.2)
    assert 1.0 <= time.monotonic() - t0 < 3


def test_a_stop_ends_an_interruptible_wait() -> None:
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()

    def down() -> None:
        raise BackendUnavailable("down")

    t0 = time.monotonic()
    with pytest.raises(BackendUnavailable):
        ride_out(down, "receive", budget=60, stop=stop)
    assert time.monotonic() - t0 < 3


def test_outage_logs_once_down_once_back_and_backs_off(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    o = Outage("queue", "redis test", monotonic=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="ebbtide.outage")
    for _ in range(5):
        err = o.failed(ConnectionError("refused\n  on two lines"))
        assert err.part == "queue" and not o.may_try()
    now[0] += 5.0
    assert o.may_try()
    o.ok()
    o.ok()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "\n" not in lines[0], lines
    assert lines[0].startswith("queue down: ConnectionError: refused on two lines")
    assert lines[1] == "queue back after 5.0s"


def test_the_retry_pause_is_the_backends_own_schedule() -> None:
    now = [100.0]
    o = Outage("queue", "redis test", monotonic=lambda: now[0])
    for _ in range(6):
        err = o.failed(ConnectionError("refused"))
    assert err.retry_in == BACKOFF_MAX  # capped: a restarted server is not left idle for long
    now[0] += 1.5
    assert o.unavailable().retry_in == pytest.approx(BACKOFF_MAX - 1.5)
    assert retry_pause(o.unavailable(), 6) == pytest.approx(BACKOFF_MAX - 1.5)  # not 6 failures' worth
    now[0] += 5.0
    assert retry_pause(o.unavailable(), 6) == RETRY_FLOOR  # due now: try again at once
    assert retry_pause(BackendUnavailable("down"), 3) == reconnect_delay(3)  # no schedule given


def test_ride_out_reconnects_soon_after_the_server_returns() -> None:
    """A stand-in server (a flag) behind a real Outage: down for 4 s, then back. The caller must
    get through within the backend's capped backoff, not a second backoff stacked on it."""
    o = Outage("queue", "flag")
    t0 = time.monotonic()
    back_at = t0 + 4.0
    tries = []

    def call() -> str:
        with o.guard((ConnectionError,)):
            tries.append(time.monotonic())
            if time.monotonic() < back_at:
                raise ConnectionError("refused")
        return "ok"

    assert ride_out(call, "receive", budget=60) == "ok"
    late = time.monotonic() - back_at
    assert late < BACKOFF_MAX + 2.0, late  # generous for a loaded machine; stacked was up to ~10 s
    assert len(tries) <= 8, tries  # the server itself was tried only on the backoff schedule
