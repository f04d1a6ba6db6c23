"""plan_ladder is pure: every rule is checked on hand-made ProbeResults, no ffmpeg involved."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest

from ebbtide.config import MediaConfig, Rung
from ebbtide.media.errors import MediaError
from ebbtide.media.ladder import plan_fps, plan_ladder
from ebbtide.media.probe import ProbeResult

CFG = MediaConfig()


def src(w: int, h: int, fps: float = 30.0, **kw: object) -> ProbeResult:
    base = ProbeResult(
        duration=60.0, width=w, height=h, rotation=0, fps=fps, vfr=False, pix_fmt="yuv420p",
        bit_depth=8, has_audio=True, bitrate=8_000_000, video_codec="h264", audio_codec="aac",
    )  # fmt: skip
    return replace(base, **kw)  # type: ignore[arg-type]


def names(p: ProbeResult, cfg: MediaConfig = CFG) -> list[str]:
    return [r.name for r in plan_ladder(p, cfg).rungs]


def test_1080p_gets_the_four_default_rungs_with_their_bitrates() -> None:
    lad = plan_ladder(src(1920, 1080), CFG)
    got = [(r.name, r.width, r.height, r.bitrate_kbps) for r in lad.rungs]
    assert got == [
        ("1080p", 1920, 1080, 6000),
        ("720p", 1280, 720, 3000),
        ("480p", 854, 480, 1500),
        ("360p", 640, 360, 730),
    ]


def test_maxrate_is_1_1x_and_bufsize_2x() -> None:
    for r in plan_ladder(src(1920, 1080), CFG).rungs:
        assert r.maxrate_kbps == round(r.bitrate_kbps * 1.1)
        assert r.bufsize_kbps == r.bitrate_kbps * 2


def test_never_upscales() -> None:
    lad = plan_ladder(src(1280, 720), CFG)
    assert lad.top.height == 720
    assert all(r.height <= 720 and r.width <= 1280 for r in lad.rungs)


def test_4k_source_is_capped_at_the_top_rung() -> None:
    assert names(src(3840, 2160)) == ["1080p", "720p", "480p", "360p"]


def test_540p_source_keeps_its_own_height_between_rungs() -> None:
    lad = plan_ladder(src(960, 540), CFG)
    assert [r.name for r in lad.rungs] == ["540p", "480p", "360p"]
    own = lad.top
    assert (own.width, own.height) == (960, 540)
    assert 1500 < own.bitrate_kbps < 3000  # between the 480p and 720p rungs


def test_1366x768_keeps_native_and_the_rungs_below() -> None:
    lad = plan_ladder(src(1366, 768), CFG)
    assert [(r.name, r.width, r.height) for r in lad.rungs][:2] == [("768p", 1366, 768), ("720p", 1280, 720)]


def test_portrait_scales_by_width() -> None:
    lad = plan_ladder(src(720, 1280), CFG)
    assert [(r.width, r.height) for r in lad.rungs] == [(720, 1280), (480, 854), (360, 640)]


def test_tiny_source_gets_one_rung_at_its_own_size_with_a_scaled_bitrate() -> None:
    lad = plan_ladder(src(320, 240), CFG)
    assert [(r.name, r.width, r.height) for r in lad.rungs] == [("240p", 320, 240)]
    assert 64 <= lad.top.bitrate_kbps < 730


def test_dimensions_are_even() -> None:
    for w, h in [(1001, 563), (853, 479), (721, 1279), (333, 187), (1366, 767)]:
        for r in plan_ladder(src(w, h), CFG).rungs:
            assert r.width % 2 == 0 and r.height % 2 == 0, (w, h, r)
            assert r.width <= w and r.height <= h


def test_fps_kept_up_to_60_and_halved_above() -> None:
    assert plan_fps(30, 60) == (Fraction(30), False)
    assert plan_fps(60, 60) == (Fraction(60), False)
    assert plan_fps(29.97, 60) == (Fraction(30000, 1001), False)
    assert plan_fps(120, 60) == (Fraction(60), True)
    assert plan_fps(240, 60) == (Fraction(60), True)
    lad = plan_ladder(src(1280, 720, fps=120), CFG)
    assert lad.fps == 60 and lad.resample_fps


def test_gop_is_two_seconds_of_frames_and_segments_six_seconds() -> None:
    assert plan_ladder(src(1280, 720, fps=30), CFG).gop_frames == 60
    assert plan_ladder(src(1280, 720, fps=25), CFG).gop_frames == 50
    lad = plan_ladder(src(1280, 720, fps=60), CFG)
    assert lad.gop_frames == 120 and lad.segment_seconds == 6.0


def test_high_frame_rate_raises_bitrates() -> None:
    slow = plan_ladder(src(1920, 1080, fps=30), CFG).rungs
    fast = plan_ladder(src(1920, 1080, fps=60), CFG).rungs
    for a, b in zip(slow, fast, strict=True):
        assert b.bitrate_kbps == round(a.bitrate_kbps * 1.5)
    fifty = plan_ladder(src(1920, 1080, fps=50), CFG).rungs
    assert fifty[0].bitrate_kbps > slow[0].bitrate_kbps


def test_vfr_is_resampled_to_cfr() -> None:
    assert plan_ladder(src(640, 360, vfr=True), CFG).resample_fps
    assert not plan_ladder(src(640, 360), CFG).resample_fps


def test_audio_is_aac_lc_stereo_48k_128k_or_absent() -> None:
    a = plan_ladder(src(640, 360), CFG).audio
    assert a is not None
    assert (a.codec, a.profile, a.channels, a.sample_rate, a.bitrate_kbps) == (
        "aac",
        "aac_low",
        2,
        48000,
        128,
    )
    assert plan_ladder(src(640, 360, has_audio=False), CFG).audio is None


def test_10bit_is_converted_once() -> None:
    assert plan_ladder(src(640, 360, pix_fmt="yuv420p10le", bit_depth=10), CFG).to_8bit
    assert not plan_ladder(src(640, 360), CFG).to_8bit


def test_configured_rungs_are_used() -> None:
    cfg = MediaConfig(rungs=(Rung(height=576, bitrate_kbps=2000), Rung(height=288, bitrate_kbps=500)))
    lad = plan_ladder(src(1920, 1080), cfg)
    assert [(r.name, r.bitrate_kbps) for r in lad.rungs] == [("576p", 2000), ("288p", 500)]
    assert lad.top.width == 1024


def test_segment_format_follows_config() -> None:
    assert plan_ladder(src(640, 360), MediaConfig(segment_format="ts")).segment_format == "ts"


def test_empty_rungs_is_a_clear_error() -> None:
    with pytest.raises(MediaError, match="rungs"):
        plan_ladder(src(640, 360), MediaConfig(rungs=()))
