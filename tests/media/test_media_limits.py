"""Pure parts of issue 10's media bounds: the container allowlist and the limit checks."""

from __future__ import annotations

import pytest

from ebbtide.config.sections import MediaLimits
from ebbtide.media import limits as lim
from ebbtide.media.containers import sniff

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


def test_budget_speed_follows_a_slower_measured_pool_never_a_faster_one() -> None:
    assert lim.budget_speed(1.0, []) == 1.0
    assert lim.budget_speed(1.0, [0.0, -1.0]) == 1.0  # nothing measured yet
    assert lim.budget_speed(1.0, [0.2, 0.25, 3.0]) == 0.25  # a contended host: the median, slower
    assert lim.budget_speed(1.0, [2.0, 4.0]) == 1.0  # faster than configured: the budget stays
    limits = MediaLimits(time_factor=4, time_floor=300)
    assert lim.time_budget(120, lim.budget_speed(1.0, [0.25]), limits) == 1920
