"""The retry verdict: one pure function, by declared error type (never by message text)."""

from __future__ import annotations

import pytest

from ebbtide.errors import BackendUnavailable, EbbtideError, Permanent, Transient
from ebbtide.media.containers import UnsupportedContainer
from ebbtide.media.errors import (
    FfmpegFailed,
    KilledBySystem,
    MediaError,
    OverBudget,
    TooSlow,
    TranscodeCancelled,
)
from ebbtide.media.limits import LimitExceeded
from ebbtide.worker.context import Cancelled
from ebbtide.worker.verdict import Verdict, verdict

D, R = Verdict.DEAD, Verdict.RETRY


@pytest.mark.parametrize(
    ("error", "first", "middle", "last"),
    [
        # permanent: dead on the first attempt, whatever max_receives allows
        (MediaError("not a video"), D, D, D),
        (LimitExceeded("lasts 1.0 d"), D, D, D),
        (UnsupportedContainer("a playlist"), D, D, D),
        (FfmpegFailed("exit 1"), D, D, D),
        (OverBudget("over its memory cap"), D, D, D),
        (Permanent("will fail again"), D, D, D),
        # transient or undeclared: retried until the last receive
        (Transient("network"), R, R, D),
        (BackendUnavailable("queue down"), R, R, D),
        (KilledBySystem("OOM killer"), R, R, D),
        (TooSlow("past its time budget while still progressing"), R, R, D),
        (TranscodeCancelled("cancelled"), R, R, D),
        (Cancelled("lease lost"), R, R, D),
        (EbbtideError("undeclared"), R, R, D),
        (RuntimeError("boom"), R, R, D),
        # a message that *reads* permanent is still judged by its type
        (RuntimeError("not a video file; invalid data"), R, R, D),
    ],
)
def test_verdict_table(error: BaseException, first: Verdict, middle: Verdict, last: Verdict) -> None:
    assert verdict(error, 1, 5) is first
    assert verdict(error, 3, 5) is middle
    assert verdict(error, 5, 5) is last


def test_both_declared_counts_as_transient() -> None:
    class Odd(Permanent, Transient):
        pass

    assert verdict(Odd("x"), 1, 5) is R


def test_decode_body_refuses_non_utf8_and_deep_bodies_without_raising_anything_else() -> None:
    from ebbtide.queue.base import BadMessage, decode_body

    for raw in (b"\xff\xfe{}", "[" * 10_000, b'{"job_id":"a","kind":"b","x":' + b"[" * 40 + b"]" * 40 + b"}"):
        with pytest.raises(BadMessage):
            decode_body(raw)
    assert decode_body(b'{"job_id":"a","kind":"b"}') == {"job_id": "a", "kind": "b"}
