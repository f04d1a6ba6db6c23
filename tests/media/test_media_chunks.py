"""Chunk planning and chunk commands (pure), and seamless output from real ffmpeg on a short clip."""

from __future__ import annotations

import hashlib
import itertools
import re
import subprocess
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import m3u8
import pytest

from ebbtide.config import MediaConfig
from ebbtide.config.sections import Rung
from ebbtide.media.chunked import encode_audio, encode_chunk, join_storyboards, stitch_folder
from ebbtide.media.chunks import (
    SEGMENT_OPTIONS,
    Chunk,
    audio_command,
    audio_share,
    boundary_frames,
    chunk_command,
    chunk_count,
    chunk_from_json,
    chunk_storyboard,
    chunk_to_json,
    ladder_from_json,
    ladder_to_json,
    last_chunk_weight,
    plan_chunks,
)
from ebbtide.media.command import STORYBOARD, EncodeOptions
from ebbtide.media.ffmpeg import ffmpeg_path
from ebbtide.media.ladder import plan_ladder
from ebbtide.media.probe import ProbeResult, probe
from ebbtide.media.stitch import Manifest, ready_prefix, stats

ClipFactory = Callable[..., Path]


def src(**kw: object) -> ProbeResult:
    d: dict[str, object] = dict(
        duration=7200.0, width=1920, height=1080, rotation=0, fps=30.0, vfr=False, pix_fmt="yuv420p",
        bit_depth=8, has_audio=True, bitrate=0, video_codec="h264", audio_codec="aac",
    )  # fmt: skip
    d.update(kw)
    return ProbeResult(**d)  # type: ignore[arg-type]


def opt(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


# ---- planning ------------------------------------------------------------------------------------
def test_boundaries_are_whole_segments_and_gops() -> None:
    assert boundary_frames(Fraction(30), 60, 6.0) == 180
    assert boundary_frames(Fraction(30000, 1001), 60, 6.0) == 180  # 29.97: frames, not seconds
    assert boundary_frames(Fraction(25), 50, 6.0) == 150
    assert boundary_frames(Fraction(30), 120, 6.0) == 360  # a 4 s GOP in 6 s segments: every 12 s


def test_plan_splits_on_boundaries_and_covers_the_source() -> None:
    chunks = plan_chunks(7200.0, Fraction(30), 60, 6.0, 4, first_weight=1.0)
    assert [c.index for c in chunks] == [0, 1, 2, 3]
    assert chunks[0].start_frame == 0 and chunks[-1].end_frame is None
    for a, b in itertools.pairwise(chunks):
        assert a.end_frame == b.start_frame
        assert b.start_frame % 180 == 0
        assert b.first_segment == b.start_frame // 180
    assert chunks[1].start == 1800.0 and chunks[1].describe(7200.0) == "chunk 2 of 4 (1800-3600 s)"


def test_the_first_chunk_is_short_so_the_start_plays_early() -> None:
    chunks = plan_chunks(7200.0, Fraction(30), 60, 6.0, 5, first_weight=0.25)
    lengths = [((c.end or 7200.0) - c.start) for c in chunks]
    assert lengths[0] == pytest.approx(7200 * 0.25 / 4.25, abs=6.0)
    assert all(x == pytest.approx(7200 / 4.25, abs=6.0) for x in lengths[1:])
    assert all(c.start_frame % 180 == 0 for c in chunks)


def test_the_last_chunk_leaves_room_for_the_audio_job() -> None:
    """The audio job is queued first; its worker then takes the last chunk, shorter by the audio."""
    ladder = plan_ladder(src(width=1280, height=720), MediaConfig())
    share = audio_share(ladder, "libx264")
    assert 0.05 < share < 0.15 and audio_share(ladder, "h264_nvenc") == 0.0
    assert audio_share(plan_ladder(src(has_audio=False), MediaConfig()), "libx264") == 0.0
    w = last_chunk_weight(2, share)
    chunks = plan_chunks(600.0, Fraction(30), 60, 6.0, 2, last_weight=w)
    first, last = chunks[0].end or 0.0, 600.0 - chunks[1].start
    # each worker's work (the audio counted on the last chunk's worker) is equal within a segment
    assert first == pytest.approx(last + share * 600.0, abs=6.0) and last < first
    assert last_chunk_weight(1, share) == 1.0 and last_chunk_weight(2, 0.0) == 1.0
    assert last_chunk_weight(40, share) == 0.25  # audio longer than a chunk: bounded


def test_plan_never_makes_empty_chunks() -> None:
    chunks = plan_chunks(10.0, Fraction(30), 60, 6.0, 8)  # two segments: at most two chunks
    assert len(chunks) == 2 and chunks[1].start_frame == 180


@pytest.mark.parametrize(
    ("duration", "workers", "expected"),
    [(40.0, 4, 1), (7200.0, 4, 4), (7200.0, 1, 1), (7200.0, 100, 32), (600.0, 10, 5), (0.0, 4, 1)],
)
def test_chunk_count(duration: float, workers: int, expected: int) -> None:
    assert chunk_count(duration, workers, min_chunk_seconds=120.0, max_chunks=32) == expected


def test_ladder_and_chunk_travel_as_json() -> None:
    ladder = plan_ladder(src(fps=29.97), MediaConfig())
    assert ladder_from_json(ladder_to_json(ladder)) == ladder
    c = Chunk(2, 5, 360, 720, Fraction(30000, 1001), 2)
    assert chunk_from_json(chunk_to_json(c)) == c


def test_ready_prefix() -> None:
    assert ready_prefix([0, 1, 3], 4) == 2
    assert ready_prefix([1, 2], 3) == 0
    assert ready_prefix([2, 1, 0], 3) == 3


# ---- command shape -------------------------------------------------------------------------------
def test_x264_chunk_command_seeks_keeps_timestamps_and_numbers_segments() -> None:
    ladder = plan_ladder(src(), MediaConfig())
    c = plan_chunks(7200.0, ladder.fps, ladder.gop_frames, ladder.segment_seconds, 4)[1]
    a = chunk_command(
        "https://bucket/src.mp4?sig=x", Path("/out"), ladder, EncodeOptions(threads=(2, 1, 1, 1)), c
    )
    i = a.index("-i")
    assert a[i + 1] == "https://bucket/src.mp4?sig=x"
    assert float(opt(a, "-ss")) == pytest.approx(1799.0) and a.index("-ss") < i  # input seeking
    assert float(opt(a, "-t")) == pytest.approx(3601.0) and "-copyts" in a[:i] and "-start_at_zero" in a[:i]
    graph = opt(a, "-filter_complex")
    assert graph.startswith("[0:v]trim=start=1799.983333:end=3599.983333[src];[src]")
    # the storyboard: a tap on the smallest rung picking the 10 s grid of the source, own sprite
    assert "[sq]select='if(isnan(prev_t)" in graph and a[-1] == "/out/.storyboard/%05d.jpg"
    assert chunk_storyboard(ladder, c) == range(180, 360)
    plain = chunk_command("/in.mp4", Path("/out"), ladder, EncodeOptions(storyboard=False), c)
    assert "storyboard" not in " ".join(plain) and "[sq]" not in opt(plain, "-filter_complex")
    assert opt(a, "-start_number") == "300" and opt(a, "-hls_segment_options") == SEGMENT_OPTIONS
    assert opt(a, "-avoid_negative_ts") == "disabled"
    assert "-an" in a and "0:a:0" not in a
    assert opt(a, "-var_stream_map") == "v:0,name:1080p v:1,name:720p v:2,name:480p v:3,name:360p"
    assert opt(a, "-threads:v:0") == "2" and opt(a, "-g:v") == "60" and opt(a, "-sc_threshold:v") == "0"


def test_first_and_last_chunk_do_not_seek_or_stop_early() -> None:
    ladder = plan_ladder(src(), MediaConfig())
    first, *_, last = plan_chunks(7200.0, ladder.fps, ladder.gop_frames, ladder.segment_seconds, 3)
    a = chunk_command("/in.mp4", Path("/out"), ladder, EncodeOptions(), first)
    assert "-ss" not in a and opt(a, "-start_number") == "0"
    b = chunk_command("/in.mp4", Path("/out"), ladder, EncodeOptions(), last)
    assert "-ss" in b and "-t" not in b and ":end=" not in opt(b, "-filter_complex")


def test_vfr_chunk_resamples_before_the_trim() -> None:
    ladder = plan_ladder(src(vfr=True), MediaConfig())
    c = plan_chunks(7200.0, ladder.fps, ladder.gop_frames, ladder.segment_seconds, 2)[1]
    graph = opt(chunk_command("/in.mp4", Path("/out"), ladder, EncodeOptions(), c), "-filter_complex")
    assert graph.startswith("[0:v]fps=30,trim=start=")
    assert graph.count("fps=") == 1


def test_nvenc_chunk_command_has_the_same_shape() -> None:
    ladder = plan_ladder(src(pix_fmt="yuv420p10le"), MediaConfig())
    c = plan_chunks(7200.0, ladder.fps, ladder.gop_frames, ladder.segment_seconds, 4)[2]
    a = chunk_command("/in.mp4", Path("/out"), ladder, EncodeOptions(encoder="h264_nvenc"), c)
    assert opt(a, "-hwaccel") == "cuda" and a.index("-hwaccel") < a.index("-i")
    assert [a[i + 1] for i, x in enumerate(a) if x.startswith("-c:v:")] == ["h264_nvenc"] * 4
    assert "scale_cuda=1920:1080:format=yuv420p" in opt(a, "-filter_complex")
    # keyframes on the source's timeline, counted from this chunk's start
    assert opt(a, "-force_key_frames:v") == "expr:gte(t-3600.000000,n_forced*2)"
    assert not any(x.startswith("-threads") for x in a)
    assert opt(a, "-start_number") == str(c.first_segment) == "600"
    assert opt(a, "-hls_segment_options") == SEGMENT_OPTIONS


def test_audio_command_encodes_the_whole_file_once() -> None:
    ladder = plan_ladder(src(), MediaConfig())
    a = audio_command("/in.mp4", Path("/out"), ladder)
    assert "-vn" in a and opt(a, "-map") == "0:a:0" and "-ss" not in a
    assert opt(a, "-var_stream_map") == "a:0,name:audio"
    assert opt(a, "-filter:a") == "atrim=end=7200.000,apad=whole_dur=7200.000"
    assert opt(a, "-avoid_negative_ts") == "make_zero"  # AAC priming must not wrap `tfdt`


# ---- real ffmpeg: a 24 s 360p clip in three chunks -----------------------------------------------
RUNGS = (Rung(height=360, bitrate_kbps=700), Rung(height=180, bitrate_kbps=250))


@pytest.fixture(scope="module")
def chunked(
    clip: ClipFactory, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, float, list[Manifest]]:
    source = clip("chunk24", seconds=24, width=640, height=360)
    cfg = MediaConfig(preset="veryfast", rungs=RUNGS)  # veryfast: B-frames, so reordering is tested
    ladder = plan_ladder(probe(source), cfg)
    root = tmp_path_factory.mktemp("chunked")
    opts = EncodeOptions(preset="veryfast", storyboard=True, progress=False)
    parts = []
    for c in plan_chunks(ladder.duration, ladder.fps, ladder.gop_frames, ladder.segment_seconds, 3, 1.0):
        m, enc = encode_chunk(str(source), root / f"c/{c.index:03d}-a", ladder, opts, c)
        assert enc == "libx264"
        parts.append(m.with_prefix(f"c/{c.index:03d}-a/"))
    audio = encode_audio(str(source), root / "a/x", ladder).with_prefix("a/x/")
    stitch_folder(root, "s-final", ladder, parts, audio, final=True)
    stitch_folder(root, "live", ladder, parts[:1], audio, final=False)
    return root, ladder.duration, parts


def test_three_chunks_cover_the_source(chunked: tuple[Path, float, list[Manifest]]) -> None:
    _, duration, parts = chunked
    assert len(parts) == 3
    for name in ("360p", "180p"):
        total = sum(p.rendition(name).duration for p in parts)
        assert abs(total - duration) <= 0.1


def test_init_segments_are_identical_across_chunks(chunked: tuple[Path, float, list[Manifest]]) -> None:
    root, _, parts = chunked
    for name in ("360p", "180p"):
        inits = [root / p.prefix / name / str(p.rendition(name).init) for p in parts]
        digests = {hashlib.sha256(f.read_bytes()).hexdigest() for f in inits}
        assert len(digests) == 1
        assert {p.rendition(name).init_sha256 for p in parts} == digests
    text = (root / "s-final/360p/index.m3u8").read_text()
    assert text.count("#EXT-X-MAP") == 1 and "#EXT-X-ENDLIST" in text and "PLAYLIST-TYPE:VOD" in text


def _decode(playlist: Path) -> tuple[str, float]:
    """ffmpeg decodes the rendition end to end; returns its warnings and the last frame's time."""
    p = subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-nostdin", "-v", "warning", "-allowed_extensions", "ALL",
         "-i", str(playlist), "-map", "0:v:0", "-f", "framemd5", "-"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    rows = [ln.split(",") for ln in p.stdout.splitlines() if ln and not ln.startswith("#")]
    pts = [int(r[2]) for r in rows]
    assert pts == sorted(pts) and len(set(pts)) == len(pts)  # no repeats, no jumps back
    return p.stderr.strip(), len(rows)


def test_every_rendition_decodes_end_to_end_without_warnings(
    chunked: tuple[Path, float, list[Manifest]],
) -> None:
    root, duration, _ = chunked
    for name in ("360p", "180p"):
        warnings, frames = _decode(root / "s-final" / name / "index.m3u8")
        assert warnings == ""  # no DTS/PTS, discontinuity or "non monotonic" complaints
        assert frames == round(duration * 30)


def test_timestamps_continue_across_the_boundary(chunked: tuple[Path, float, list[Manifest]]) -> None:
    root, _, parts = chunked
    first_of_second = root / parts[1].prefix / "360p" / parts[1].rendition("360p").segments[0].uri
    data = first_of_second.read_bytes()
    i = data.find(b"tfdt")
    version = data[i + 4]
    tfdt = int.from_bytes(data[i + 8 : i + 16] if version == 1 else data[i + 8 : i + 12], "big")
    start = parts[0].rendition("360p").duration
    assert tfdt / 15360 == pytest.approx(start, abs=0.001)  # timescale of 30 fps video: 15360


def test_master_measures_bandwidth_over_all_chunks(chunked: tuple[Path, float, list[Manifest]]) -> None:
    root, _, parts = chunked
    master = (root / "s-final/master.m3u8").read_text()
    segs = [s for p in parts for s in p.rendition("360p").segments]
    st = stats(segs)
    assert f"AVERAGE-BANDWIDTH={st.average_bps + stats(_audio_segments(root)).average_bps}" in master
    assert 'CODECS="avc1.' in master and ",mp4a.40.2" in master and "FRAME-RATE=30.000" in master
    assert 'URI="audio/index.m3u8"' in master
    audio = (root / "s-final/audio/index.m3u8").read_text()
    assert "../../a/x/audio/seg_00000.m4s" in audio and "#EXT-X-ENDLIST" in audio


def test_storyboard_of_the_chunks_matches_the_unchunked_one(
    chunked: tuple[Path, float, list[Manifest]], clip: ClipFactory, tmp_path: Path
) -> None:
    """Each chunk tiles the storyboard frames on its part of the 10 s grid (0, 10, 20 s: one per
    8 s chunk); joined, they make the sprite the unchunked encode makes from the same source."""
    from ebbtide.media.pipeline import transcode

    root, _, parts = chunked
    assert [p.storyboard_frames for p in parts] == [1, 1, 1]
    out = root / "s-final" / STORYBOARD
    assert join_storyboards([(root / p.prefix / STORYBOARD, p.storyboard_frames) for p in parts], out)
    whole = transcode(clip("chunk24", seconds=24, width=640, height=360), tmp_path / "whole",
                      MediaConfig(preset="veryfast", rungs=RUNGS))  # fmt: skip
    assert whole.storyboard == STORYBOARD
    ref = tmp_path / "whole" / STORYBOARD
    assert _size(out) == _size(ref) == (3 * 160, 90)
    assert _psnr(out, ref) > 30  # the same frames (a frame 10 s off scores ~10-15 dB)


def _size(jpg: Path) -> tuple[int, int]:
    p = subprocess.run([ffmpeg_path(), "-hide_banner", "-i", str(jpg)], capture_output=True, text=True)
    w, h = re.search(r", (\d+)x(\d+)", p.stderr).groups()  # type: ignore[union-attr]
    return int(w), int(h)


def _psnr(a: Path, b: Path) -> float:
    p = subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-i", str(a), "-i", str(b), "-lavfi", "psnr", "-f", "null", "-"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return float(re.search(r"average:([\d.]+|inf)", p.stderr).group(1))  # type: ignore[union-attr]


def _tfdt(segment: Path) -> int:
    data = segment.read_bytes()
    i = data.find(b"tfdt")
    return int.from_bytes(data[i + 8 : i + 16] if data[i + 4] == 1 else data[i + 8 : i + 12], "big")


def test_audio_starts_at_zero_like_the_video(chunked: tuple[Path, float, list[Manifest]]) -> None:
    """hls.js places fragments by `tfdt`: the audio's first must be 0, not AAC priming wrapped
    to 2^64 - 1024 (which stalled playback at the end of the first buffered range)."""
    root, _, parts = chunked
    assert _tfdt(root / "a/x/audio/seg_00000.m4s") == 0
    assert _tfdt(root / parts[0].prefix / "360p" / parts[0].rendition("360p").segments[0].uri) == 0


def test_a_growing_set_lists_the_audio_as_far_as_the_video(
    chunked: tuple[Path, float, list[Manifest]],
) -> None:
    """Live video with VOD audio stalls hls.js: the live audio playlist grows with the video."""
    root, _, parts = chunked
    video = m3u8.loads((root / "live/360p/index.m3u8").read_text())
    audio = m3u8.loads((root / "live/audio/index.m3u8").read_text())
    assert video.playlist_type == audio.playlist_type == "event"
    assert not video.is_endlist and not audio.is_endlist
    v = sum(s.duration for s in video.segments)
    a = sum(s.duration for s in audio.segments)
    assert v == pytest.approx(parts[0].rendition("360p").duration)
    assert v <= a < v + audio.target_duration  # covers the video, one audio segment beyond at most
    assert a < 20  # not the whole 24 s track


def _audio_segments(root: Path) -> list:  # type: ignore[type-arg]
    from ebbtide.media.stitch import read_outputs

    return list(read_outputs(root / "a/x", ["audio"], -1).rendition("audio").segments)


def test_a_chunk_reads_only_its_part_of_the_source_over_http(clip: ClipFactory, tmp_path: Path) -> None:
    """Ranged reads: ffmpeg on a (presigned-style) URL seeks to the keyframe before its chunk."""
    from ebbtide.media.rangeserve import CountingServer

    # a camera-like source: a keyframe every 2 s (a chunk seeks to the one before its start)
    source = clip("chunk40", seconds=40, width=320, height=240, preset="veryfast", crf=18, gop=60)
    size = source.stat().st_size
    cfg = MediaConfig(preset="ultrafast", rungs=(Rung(height=240, bitrate_kbps=300),))
    ladder = plan_ladder(probe(source), cfg)
    chunks = plan_chunks(ladder.duration, ladder.fps, ladder.gop_frames, ladder.segment_seconds, 4)
    opts = EncodeOptions(preset="ultrafast", storyboard=False, progress=False)
    read = []
    with CountingServer(source.parent) as server:
        for c in chunks:
            server.reset()
            encode_chunk(server.url(source.name), tmp_path / str(c.index), ladder, opts, c)
            read.append(server.sent[source.name])
    print(f"\nsource {size} bytes; bytes read per chunk: {read}")
    for c, r in zip(chunks, read, strict=True):
        length = (c.end or ladder.duration) - c.start
        # its own span, plus the GOP before it and the second after, plus a fixed overhead (the
        # file's index at the end, a read-ahead piece per seek); a download would be all of it
        assert r < size * (length + 4) / ladder.duration + 1024 * 1024, (c.index, r, size)
        assert r < 0.6 * size


def test_a_chunk_encode_past_its_time_budget_is_stopped(clip: ClipFactory, tmp_path: Path) -> None:
    """Chunks are bounded like an unchunked transcode: past its budget ffmpeg is killed and the
    overrun judged (stuck or hopeless: OverBudget; still progressing: TooSlow, retried)."""
    import time

    from ebbtide.media.errors import OverBudget, TooSlow
    from ebbtide.media.pace import TimeBudget

    source = clip("chunk24", seconds=24, width=640, height=360)
    ladder = plan_ladder(probe(source), MediaConfig(preset="veryfast", rungs=RUNGS))
    c = plan_chunks(ladder.duration, ladder.fps, ladder.gop_frames, ladder.segment_seconds, 2, 1.0)[0]
    budget = TimeBudget(seconds=0.3, largest=0.3, duration=12.0, stall=60.0)
    t0 = time.monotonic()
    with pytest.raises((OverBudget, TooSlow)):
        encode_chunk(str(source), tmp_path / "c", ladder, EncodeOptions(preset="veryfast"), c, budget=budget)
    assert time.monotonic() - t0 < 30
