"""The -progress parser: key=value blocks in, monotonic Progress updates out."""

from __future__ import annotations

from ebbtide.media.progress import Progress, ProgressParser, progress_from_block

BLOCK = """frame=120
fps=60.1
bitrate=N/A
out_time_us=4000000
out_time_ms=4000000
out_time=00:00:04.000000
speed=2.00x
progress=continue"""


def feed(parser: ProgressParser, text: str) -> None:
    for line in text.splitlines():
        parser.feed(line)


def test_block_gives_fraction_speed_and_eta() -> None:
    got: list[Progress] = []
    p = ProgressParser(10.0, got.append)
    feed(p, BLOCK)
    assert got == [Progress(0.4, 2.0, 3.0)]  # 6 s of media left at 2x → 3 s


def test_end_block_is_complete() -> None:
    got: list[Progress] = []
    p = ProgressParser(10.0, got.append)
    feed(p, BLOCK.replace("progress=continue", "progress=end"))
    assert got[-1].fraction == 1.0 and got[-1].eta == 0.0


def test_na_speed_and_negative_time_at_start() -> None:
    pr = progress_from_block(
        {"out_time_us": "-9223372036854775807", "speed": "N/A", "progress": "continue"}, 10
    )
    assert pr == Progress(0.0, None, None)


def test_fraction_never_goes_backwards_and_is_capped() -> None:
    got: list[Progress] = []
    p = ProgressParser(10.0, got.append)
    feed(p, BLOCK.replace("4000000", "8000000"))
    feed(p, BLOCK)  # a later block reporting less
    feed(p, BLOCK.replace("4000000", "99000000"))
    assert [g.fraction for g in got] == [0.8, 0.8, 1.0]


def test_no_update_until_a_block_ends_and_junk_is_ignored() -> None:
    got: list[Progress] = []
    p = ProgressParser(10.0, got.append)
    for line in ["garbage line", "out_time_us=1000000", "speed=1x", ""]:
        p.feed(line)
    assert got == []
    p.feed("progress=continue")
    assert got == [Progress(0.1, 1.0, 9.0)]


def test_zero_duration_does_not_divide_by_zero() -> None:
    assert progress_from_block({"out_time_us": "5", "speed": "1x", "progress": "continue"}, 0).fraction == 0.0
