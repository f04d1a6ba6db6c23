"""End to end: real ffmpeg (imageio-ffmpeg) on lavfi clips → HLS ladder → validated."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import av
import m3u8
import psutil
import pytest

from ebbtide.config import MediaConfig
from ebbtide.media import pipeline
from ebbtide.media.errors import MediaError, TranscodeCancelled
from ebbtide.media.ffmpeg import nvenc_works, run_ffmpeg
from ebbtide.media.pipeline import TranscodeResult, transcode
from ebbtide.media.progress import Progress
from ebbtide.media.validate import validate_hls

ClipFactory = Callable[..., Path]


def first_video_frame(folder: Path) -> av.VideoFrame:
    """Decode the first frame of a rendition (init segment + first media segment)."""
    pl = m3u8.load(str(folder / "index.m3u8"))
    seg = pl.segments[0]
    data = b""
    if seg.init_section is not None:
        data += (folder / str(seg.init_section.uri)).read_bytes()
    data += (folder / str(seg.uri)).read_bytes()
    tmp = folder / "_probe.bin"
    tmp.write_bytes(data)
    try:
        with av.open(str(tmp)) as c:
            return next(c.decode(video=0))
    finally:
        tmp.unlink()


def check_common(out: Path, res: TranscodeResult, *, audio: bool, source_duration: float) -> str:
    master = (out / res.master).read_text()
    assert res.master == "master.m3u8" and res.thumbnail == "thumbnail.jpg"
    validate_hls(out, source_duration)
    assert master.count("#EXT-X-STREAM-INF") == len(res.renditions)
    assert "AVERAGE-BANDWIDTH=" in master
    for r in res.renditions:
        assert f"RESOLUTION={r.width}x{r.height}" in master
        assert 0 < r.average_bandwidth <= r.bandwidth
        media = (out / r.playlist).read_text()
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in media and "#EXT-X-ENDLIST" in media
        frame = first_video_frame(out / r.playlist.split("/")[0])
        assert (frame.width, frame.height) == (r.width, r.height)
        assert frame.format.name == "yuv420p"
    bws = [r.bandwidth for r in res.renditions]
    assert bws == sorted(bws, reverse=True)
    if audio:
        assert master.count("#EXT-X-MEDIA:TYPE=AUDIO") == 1 and 'AUDIO="aud"' in master
        assert (out / "audio" / "index.m3u8").is_file()
        assert "mp4a.40.2" in master
    else:
        assert "EXT-X-MEDIA" not in master and "mp4a" not in master
        assert not (out / "audio").exists()
    with av.open(str(out / res.thumbnail)) as c:
        th = next(c.decode(video=0))
        assert min(th.width, th.height) <= 720
    return master


def test_1080p30_with_audio_default_preset(clip: ClipFactory, tmp_path: Path) -> None:
    src = clip("hd1080", seconds=2, width=1920, height=1080)
    seen: list[Progress] = []
    res = transcode(src, tmp_path / "out", MediaConfig(), on_progress=seen.append)
    assert [r.name for r in res.renditions] == ["1080p", "720p", "480p", "360p"]
    assert [(r.width, r.height) for r in res.renditions] == [
        (1920, 1080),
        (1280, 720),
        (854, 480),
        (640, 360),
    ]
    check_common(tmp_path / "out", res, audio=True, source_duration=2.0)
    assert res.encoder == ("h264_nvenc" if nvenc_works() else "libx264")
    assert seen and seen[-1].fraction == 1.0
    assert [p.fraction for p in seen] == sorted(p.fraction for p in seen)
    assert res.storyboard is None  # 2 s holds one storyboard frame: no sprite
    assert abs(res.duration - 2.0) < 0.05


def test_no_audio(clip: ClipFactory, tmp_path: Path, fast_cfg: MediaConfig) -> None:
    src = clip("noaudio360", seconds=2, width=640, height=360, audio=False)
    res = transcode(src, tmp_path / "out", fast_cfg)
    assert [r.name for r in res.renditions] == ["360p"]
    check_common(tmp_path / "out", res, audio=False, source_duration=2.0)


def test_720p_portrait(clip: ClipFactory, tmp_path: Path, fast_cfg: MediaConfig) -> None:
    src = clip("portrait720", seconds=2, width=1280, height=720, portrait=True)
    res = transcode(src, tmp_path / "out", fast_cfg)
    assert [(r.name, r.width, r.height) for r in res.renditions] == [
        ("720p", 720, 1280), ("480p", 480, 854), ("360p", 360, 640),
    ]  # fmt: skip
    check_common(tmp_path / "out", res, audio=True, source_duration=2.0)


def test_1366x768(clip: ClipFactory, tmp_path: Path, fast_cfg: MediaConfig) -> None:
    src = clip("wxga", seconds=2, width=1366, height=768)
    res = transcode(src, tmp_path / "out", fast_cfg)
    assert [(r.name, r.width, r.height) for r in res.renditions] == [
        ("768p", 1366, 768), ("720p", 1280, 720), ("480p", 854, 480), ("360p", 640, 360),
    ]  # fmt: skip
    check_common(tmp_path / "out", res, audio=True, source_duration=2.0)


def test_60fps_keeps_60_and_a_2s_gop(clip: ClipFactory, tmp_path: Path, fast_cfg: MediaConfig) -> None:
    src = clip("fps60_360", seconds=3, width=640, height=360, fps=60)
    out = tmp_path / "out"
    res = transcode(src, out, fast_cfg)
    master = check_common(out, res, audio=True, source_duration=3.0)
    assert "FRAME-RATE=60.000" in master
    assert res.ladder is not None and res.ladder.gop_frames == 120
    # Keyframes every 2 s: at frame 0 and 120 of the single segment.
    folder = out / "360p"
    data = (folder / "init.mp4").read_bytes() if (folder / "init.mp4").exists() else b""
    seg = m3u8.load(str(folder / "index.m3u8")).segments[0]
    data = (folder / str(seg.init_section.uri)).read_bytes() + (folder / str(seg.uri)).read_bytes()
    (tmp_path / "s.mp4").write_bytes(data)
    with av.open(str(tmp_path / "s.mp4")) as c:
        keys = [i for i, p in enumerate(c.demux(video=0)) if p.size and p.is_keyframe]
    assert keys == [0, 120]


def test_10bit_input_becomes_8bit(clip: ClipFactory, tmp_path: Path, fast_cfg: MediaConfig) -> None:
    src = clip("tenbit360", seconds=2, width=640, height=360, pix_fmt="yuv420p10le")
    res = transcode(src, tmp_path / "out", fast_cfg)
    check_common(tmp_path / "out", res, audio=True, source_duration=2.0)  # asserts yuv420p frames
    assert res.probe.bit_depth == 10


def test_rotated_90_input_is_upright_portrait(
    clip: ClipFactory, tmp_path: Path, fast_cfg: MediaConfig
) -> None:
    src = clip("rot90_640", seconds=2, width=640, height=360, rotation=90)
    res = transcode(src, tmp_path / "out", fast_cfg)
    assert [(r.width, r.height) for r in res.renditions] == [(360, 640)]
    check_common(tmp_path / "out", res, audio=True, source_duration=2.0)


def test_variable_frame_rate(clip: ClipFactory, tmp_path: Path, fast_cfg: MediaConfig) -> None:
    src = clip("vfr320", seconds=3, vfr=True)
    res = transcode(src, tmp_path / "out", fast_cfg)
    assert res.probe.vfr
    master = check_common(tmp_path / "out", res, audio=True, source_duration=res.probe.duration)
    assert "FRAME-RATE=30.000" in master


def test_tiny_320x240_with_segments_storyboard_and_ts(
    clip: ClipFactory, tmp_path: Path, fast_cfg: MediaConfig
) -> None:
    src = clip("tiny13", seconds=13)
    res = transcode(src, tmp_path / "out", fast_cfg)
    assert [(r.name, r.width, r.height) for r in res.renditions] == [("240p", 320, 240)]
    check_common(tmp_path / "out", res, audio=True, source_duration=13.0)
    durs = [s.duration for s in m3u8.load(str(tmp_path / "out" / "240p" / "index.m3u8")).segments]
    assert [round(d, 2) for d in durs] == [6.0, 6.0, 1.0]
    assert res.storyboard == "storyboard.jpg"
    with av.open(str(tmp_path / "out" / "storyboard.jpg")) as c:
        sb = next(c.decode(video=0))
        assert (sb.width, sb.height) == (2 * 160, 120)  # frames at 0 s and 10 s, 160x120 tiles
    ts = transcode(src, tmp_path / "ts", fast_cfg.model_copy(update={"segment_format": "ts"}))
    check_common(tmp_path / "ts", ts, audio=True, source_duration=13.0)
    assert list((tmp_path / "ts" / "240p").glob("*.ts")) and not list((tmp_path / "ts").rglob("*.m4s"))


def test_rerun_into_the_same_folder_replaces_old_outputs(
    clip: ClipFactory, tmp_path: Path, fast_cfg: MediaConfig
) -> None:
    src = clip("base320", seconds=2)
    out = tmp_path / "out"
    transcode(src, out, fast_cfg)
    (out / "240p" / "seg_00099.m4s").write_bytes(b"stale")
    transcode(src, out, fast_cfg)
    assert not (out / "240p" / "seg_00099.m4s").exists()


def test_bad_input_fails_before_encoding(tmp_path: Path, fast_cfg: MediaConfig) -> None:
    f = tmp_path / "fake.mp4"
    f.write_text("not a video")
    with pytest.raises(MediaError, match="not a video file"):
        transcode(f, tmp_path / "out", fast_cfg)
    assert not (tmp_path / "out").exists()


def test_cancel_kills_ffmpeg_within_a_second(clip: ClipFactory, tmp_path: Path) -> None:
    src = clip("long360", seconds=30, width=640, height=360)
    cancel = threading.Event()
    set_at: list[float] = []

    def on_progress(p: Progress) -> None:
        if not cancel.is_set():
            set_at.append(time.monotonic())
            cancel.set()

    me = psutil.Process()
    with pytest.raises(TranscodeCancelled):
        transcode(src, tmp_path / "out", MediaConfig(preset="medium"), on_progress=on_progress, cancel=cancel)
    assert set_at, "no progress was reported before the encode ended"
    assert time.monotonic() - set_at[0] < 1.0
    assert not [c for c in me.children(recursive=True) if "ffmpeg" in c.name()]


def test_validate_rejects_a_broken_set(clip: ClipFactory, tmp_path: Path, fast_cfg: MediaConfig) -> None:
    src = clip("base320", seconds=2)
    out = tmp_path / "out"
    transcode(src, out, fast_cfg)
    with pytest.raises(MediaError, match="source lasts"):
        validate_hls(out, 5.0)
    pl = out / "240p" / "index.m3u8"
    text = pl.read_text()
    pl.write_text(text.replace("#EXT-X-ENDLIST\n", ""))
    with pytest.raises(MediaError, match="not a finished VOD"):
        validate_hls(out, 2.0)
    pl.write_text(text)
    seg = next((out / "240p").glob("seg_*.m4s"))
    seg.unlink()
    with pytest.raises(MediaError, match="missing"):
        validate_hls(out, 2.0)


def test_validate_rejects_segments_not_starting_on_a_keyframe(clip: ClipFactory, tmp_path: Path) -> None:
    """A set cut by time (`split_by_time`) with a long GOP: segments 2+ start mid-GOP."""
    src = clip("base320_3", seconds=3)
    out = tmp_path / "bad"
    (out / "v").mkdir(parents=True)
    run_ffmpeg([
        "-y", "-loglevel", "error", "-i", str(src), "-map", "0:v", "-c:v", "libx264", "-preset", "ultrafast",
        "-g", "300", "-sc_threshold", "0", "-f", "hls", "-hls_time", "1", "-hls_flags", "split_by_time",
        "-hls_playlist_type", "vod", "-hls_segment_filename", str(out / "v" / "s%03d.ts"),
        str(out / "v" / "index.m3u8"),
    ])  # fmt: skip
    (out / "master.m3u8").write_text("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000000\nv/index.m3u8\n")
    with pytest.raises(MediaError, match="does not start with a keyframe"):
        validate_hls(out, 3.0)


def test_gpu_path_falls_back_to_cpu_when_nvenc_fails(
    clip: ClipFactory, tmp_path: Path, fast_cfg: MediaConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the GPU detection is replaced (forced to say yes); the NVDEC/NVENC ffmpeg command
    really runs and really fails on this GPU-less machine, and the pipeline must redo the job on
    the CPU. On a machine with a working GPU the first attempt would simply succeed."""
    monkeypatch.setattr(pipeline, "choose_encoder", lambda setting: "h264_nvenc")
    src = clip("base320", seconds=2)
    res = transcode(src, tmp_path / "out", fast_cfg)
    assert res.encoder == ("h264_nvenc" if nvenc_works() else "libx264")
    check_common(tmp_path / "out", res, audio=True, source_duration=2.0)


def test_audio_longer_than_video_is_cut_to_the_video(tmp_path: Path, fast_cfg: MediaConfig) -> None:
    src = tmp_path / "long_audio.mp4"
    run_ffmpeg([
        "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=2",
        "-f", "lavfi", "-i", "sine=duration=3.5", "-c:v", "libx264", "-preset", "ultrafast",
        "-c:a", "aac", str(src),
    ])  # fmt: skip
    res = transcode(src, tmp_path / "out", fast_cfg)
    audio = sum(s.duration for s in m3u8.load(str(tmp_path / "out" / "audio" / "index.m3u8")).segments)
    assert abs(audio - res.duration) < 0.2
