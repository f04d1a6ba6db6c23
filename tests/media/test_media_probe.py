"""probe() on real lavfi clips, and bad inputs that must give a clear MediaError."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ebbtide.errors import EbbtideError
from ebbtide.media.errors import MediaError
from ebbtide.media.ffmpeg import ffmpeg_path, run_ffmpeg
from ebbtide.media.probe import probe

ClipFactory = Callable[..., Path]


def test_plain_clip(clip: ClipFactory) -> None:
    p = probe(clip("base", seconds=2))
    assert (p.width, p.height, p.rotation, p.fps, p.vfr) == (320, 240, 0, 30.0, False)
    assert abs(p.duration - 2.0) < 0.05
    assert (p.pix_fmt, p.bit_depth, p.video_codec) == ("yuv420p", 8, "h264")
    assert p.has_audio and p.audio_codec == "aac" and p.audio_sample_rate == 48000
    assert p.bitrate > 0 and p.size_bytes > 0


def test_no_audio(clip: ClipFactory) -> None:
    p = probe(clip("noaudio", seconds=1, audio=False))
    assert not p.has_audio and p.audio_codec is None


def test_rotation_swaps_dimensions(clip: ClipFactory) -> None:
    p = probe(clip("rot90", seconds=1, width=320, height=180, rotation=90))
    assert p.rotation in (90, 270)
    assert (p.width, p.height) == (180, 320) and p.portrait


def test_ten_bit(clip: ClipFactory) -> None:
    p = probe(clip("tenbit", seconds=1, pix_fmt="yuv420p10le"))
    assert p.pix_fmt == "yuv420p10le" and p.bit_depth == 10


def test_vfr_detected_and_cfr_not(clip: ClipFactory) -> None:
    p = probe(clip("vfr", seconds=2, vfr=True))
    assert p.vfr and p.fps == 30.0
    assert not probe(clip("fps60", seconds=1, fps=60, width=256, height=144)).vfr


def test_sixty_fps(clip: ClipFactory) -> None:
    assert probe(clip("fps60", seconds=1, fps=60, width=256, height=144)).fps == 60.0


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="does not exist"):
        probe(tmp_path / "nope.mp4")


def test_zero_bytes(tmp_path: Path) -> None:
    f = tmp_path / "empty.mp4"
    f.write_bytes(b"")
    with pytest.raises(MediaError, match=r"empty \(0 bytes\)") as e:
        probe(f)
    assert e.value.hint


def test_text_file_named_mp4(tmp_path: Path) -> None:
    f = tmp_path / "notes.mp4"
    f.write_text("this is a shopping list, not a video\n" * 20)
    with pytest.raises(MediaError, match="not a video file") as e:
        probe(f)
    assert isinstance(e.value, EbbtideError) and e.value.hint


def test_truncated_mp4_moov_at_end(clip: ClipFactory, tmp_path: Path) -> None:
    data = clip("base", seconds=2).read_bytes()
    f = tmp_path / "cut.mp4"
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="truncated"):
        probe(f)


def test_truncated_mp4_faststart(clip: ClipFactory, tmp_path: Path) -> None:
    data = clip("faststart", seconds=2, faststart=True).read_bytes()
    probe(clip("faststart", seconds=2, faststart=True))  # the whole file is fine
    f = tmp_path / "cut_fast.mp4"
    f.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(MediaError, match="truncated"):
        probe(f)


def test_audio_only_file(tmp_path: Path) -> None:
    f = tmp_path / "song.m4a"
    run_ffmpeg(["-y", "-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(f)])
    with pytest.raises(MediaError, match="no video stream"):
        probe(f)


def test_ffmpeg_override_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EBBTIDE_FFMPEG", str(tmp_path / "missing-ffmpeg"))
    with pytest.raises(MediaError, match="EBBTIDE_FFMPEG"):
        ffmpeg_path()
    monkeypatch.delenv("EBBTIDE_FFMPEG")
    assert Path(ffmpeg_path()).is_file()
