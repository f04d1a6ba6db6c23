"""The retry rules of an outage, as pure as they get: backoff, give-up, stop, one line per outage."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from ebbtide.errors import BackendUnavailable, EbbtideError
from ebbtide.outage import Outage, reconnect_delay
from ebbtide.worker.riding import ride_out


def test_reconnect_delay_doubles_up_to_the_cap() -> None:
    assert [reconnect_delay(n) for n in range(6)] == [0.0, 0.5, 1.0, 2.0, 4.0, 5.0]


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
