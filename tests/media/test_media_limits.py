"""Pure parts of issue 10's media bounds: the container allowlist and the limit checks."""

from __future__ import annotations

import pytest

from ebbtide.config.sections import MediaLimits
from ebbtide.media import limits as lim
from ebbtide.media.containers import sniff
from ebbtide.media.pace import Overrun, Pace, TimeBudget, judge

TS = bytes([0x47] + [0] * 187) * 4


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"\x00\x00\x00\x20ftypisom" + b"\x00" * 32, "mov"),
        (b"\x1a\x45\xdf\xa3" + b"\x00" * 32, "matroska"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "avi"),
        (b"FLV\x01\x05", "flv"),
        (b"\x00\x00\x01\xba" + b"\x00" * 16, "mpeg"),
        (TS, "mpegts"),
        (b"OggS\x00", "ogg"),
        # everything that can open a second resource, or is not a container, has no demuxer
        (b"#EXTM3U\n#EXTINF:2,\n/srv/store/users/a/media/b/source/x.mp4\n", None),
        (b"ffconcat version 1.0\nfile 'http://127.0.0.1/x.mp4'\n", None),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, None),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 32, None),
        (b"data:video/mp4;base64,AAAA", None),
        (b"subfile,,start,0,end,0,,:/etc/passwd", None),
        (b"<?xml version='1.0'?><MPD/>", None),
        (b"", None),
    ],
)
def test_sniff_allowlist(head: bytes, fmt: str | None) -> None:
    assert sniff(head) == fmt


def test_limit_checks_name_the_key_and_no_path() -> None:
    limits = MediaLimits(max_duration=60, max_pixels=100 * 100, max_timestamp_gap=5, max_streams=2)
    cases = [
        (lambda: lim.check_duration(61, limits), "max_duration"),
        (lambda: lim.check_frame(101, 100, limits), "max_pixels"),
        (lambda: lim.check_gap(5.5, limits), "max_timestamp_gap"),
        (lambda: lim.check_streams(3, limits), "max_streams"),
        (lambda: lim.check_fps(241, MediaLimits()), "max_fps"),
        (lambda: lim.check_size(9 * 1024**3, MediaLimits()), "max_input_size"),
    ]
    for call, key in cases:
        with pytest.raises(lim.LimitExceeded) as e:
            call()
        assert key in (e.value.hint or "") and "/" not in e.value.message
    lim.check_duration(60, limits)
    lim.check_frame(100, 100, limits)
    lim.check_gap(5, limits)


def test_time_budget_scales_with_duration_and_speed_with_a_floor() -> None:
    limits = MediaLimits(time_factor=4, time_floor=300)
    assert lim.time_budget(10, 1.0, limits) == 300
    assert lim.time_budget(600, 1.0, limits) == 2400
    assert lim.time_budget(600, 2.0, limits) == 1200


def test_time_factor_doubles_per_attempt_up_to_the_largest() -> None:
    limits = MediaLimits(time_factor=4, max_time_factor=16, time_floor=300, stall_timeout=60)
    assert [lim.time_factor(a, limits) for a in (0, 1, 2, 3, 4, 9)] == [4, 4, 8, 16, 16, 16]
    assert lim.time_budget(120, 1.0, limits, attempt=2) == 960
    b = lim.attempt_budget(120, 1.0, limits, attempt=1)
    assert (b.seconds, b.largest, b.duration, b.stall) == (480, 1920, 120, 60)
    # a largest factor below time_factor never shrinks the first budget
    assert lim.time_factor(3, MediaLimits(time_factor=4, max_time_factor=2)) == 4


def test_an_overrun_is_stuck_hopeless_or_slow() -> None:
    b = TimeBudget(seconds=480, largest=1920, duration=120, stall=60)
    # no output time at all, or none added for stall seconds: stuck on its input
    assert judge(Overrun(480, None, 480), b) is Pace.STALLED
    assert judge(Overrun(480, 0.0, 5), b) is Pace.STALLED
    assert judge(Overrun(480, 90, 60), b) is Pace.STALLED
    # progressing at 0.125x: 960 s to finish, within the largest budget: a slow host
    assert judge(Overrun(480, 60, 0.5), b) is Pace.SLOW
    # progressing at 0.025x: 4800 s to finish, past the largest budget: no retry helps
    assert judge(Overrun(480, 12, 0.5), b) is Pace.HOPELESS
    # the largest budget itself ran out: permanent whatever the rate
    assert judge(Overrun(1920, 119, 0.5), b) is Pace.HOPELESS


def test_budget_speed_follows_a_slower_measured_pool_never_a_faster_one() -> None:
    assert lim.budget_speed(1.0, []) == 1.0
    assert lim.budget_speed(1.0, [0.0, -1.0]) == 1.0  # nothing measured yet
    assert lim.budget_speed(1.0, [0.2, 0.25, 3.0]) == 0.25  # a contended host: the median, slower
    assert lim.budget_speed(1.0, [2.0, 4.0]) == 1.0  # faster than configured: the budget stays
    limits = MediaLimits(time_factor=4, time_floor=300)
    assert lim.time_budget(120, lim.budget_speed(1.0, [0.25]), limits) == 1920
