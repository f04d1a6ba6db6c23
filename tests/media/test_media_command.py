"""Command shape, checked without running ffmpeg (the NVENC shape cannot run here: no GPU)."""

from __future__ import annotations

from pathlib import Path

from ebbtide.config import MediaConfig
from ebbtide.media.command import EncodeOptions, build_command, plan_storyboard, split_threads
from ebbtide.media.ladder import plan_ladder
from ebbtide.media.pipeline import choose_encoder
from ebbtide.media.probe import ProbeResult

OUT = Path("/out")


def src(w: int = 1920, h: int = 1080, **kw: object) -> ProbeResult:
    d: dict[str, object] = dict(
        duration=60.0, width=w, height=h, rotation=0, fps=30.0, vfr=False, pix_fmt="yuv420p",
        bit_depth=8, has_audio=True, bitrate=0, video_codec="h264", audio_codec="aac",
    )  # fmt: skip
    d.update(kw)
    return ProbeResult(**d)  # type: ignore[arg-type]


def argv(p: ProbeResult, **opts: object) -> list[str]:
    return build_command(Path("/in.mp4"), OUT, plan_ladder(p, MediaConfig()), EncodeOptions(**opts))  # type: ignore[arg-type]


def opt(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_cpu_one_input_one_split_cascade_four_x264_outputs() -> None:
    a = argv(src(), threads=(2, 1, 1, 1))
    assert a.count("-i") == 1
    graph = opt(a, "-filter_complex")
    # The 1080p rung is the source itself; 720p comes from it, 480p from 720p, 360p from 480p.
    assert graph.startswith("[0:v]null,split=2[v0][c0]")
    assert "[c0]scale=1280:720:flags=bicubic,split=2[v1][c1]" in graph
    assert "[c1]scale=854:480:flags=bicubic,split=2[v2][c2]" in graph
    assert "[c2]scale=640:360:flags=bicubic,split=2[v3][sq]" in graph
    assert [a[i + 1] for i, x in enumerate(a) if x.startswith("-c:v:")] == ["libx264"] * 4
    assert (
        opt(a, "-b:v:0") == "6000k"
        and opt(a, "-maxrate:v:0") == "6600k"
        and opt(a, "-bufsize:v:0") == "12000k"
    )
    assert opt(a, "-threads:v:0") == "2" and opt(a, "-threads:v:3") == "1"
    assert opt(a, "-g:v") == "60" and opt(a, "-keyint_min:v") == "60" and opt(a, "-sc_threshold:v") == "0"


def test_audio_is_encoded_once_and_shared_by_every_rung() -> None:
    a = argv(src())
    assert a.count("-c:a") == 1 and a.count("0:a:0") == 1
    assert opt(a, "-var_stream_map") == (
        "v:0,agroup:aud,name:1080p v:1,agroup:aud,name:720p v:2,agroup:aud,name:480p "
        "v:3,agroup:aud,name:360p a:0,agroup:aud,name:audio"
    )
    assert opt(a, "-b:a") == "128k" and opt(a, "-ar") == "48000" and opt(a, "-ac") == "2"


def test_no_audio_input_maps_no_audio() -> None:
    a = argv(src(has_audio=False))
    assert "-c:a" not in a and "0:a:0" not in a
    assert "agroup" not in opt(a, "-var_stream_map")


def test_hls_vod_fmp4_six_second_segments() -> None:
    a = argv(src())
    assert a[a.index("-f", a.index("-i")) + 1] == "hls"
    assert opt(a, "-hls_time") == "6" and opt(a, "-hls_playlist_type") == "vod"
    assert opt(a, "-hls_segment_type") == "fmp4"
    ts = build_command(
        Path("/in.mp4"), OUT, plan_ladder(src(), MediaConfig(segment_format="ts")), EncodeOptions()
    )
    assert opt(ts, "-hls_segment_type") == "mpegts" and opt(ts, "-hls_segment_filename").endswith(".ts")


def test_10bit_is_fixed_once_before_the_split_and_vfr_at_the_output() -> None:
    a = argv(src(pix_fmt="yuv420p10le", vfr=True))
    graph = opt(a, "-filter_complex")
    assert graph.startswith("[0:v]format=yuv420p,split=2")
    assert graph.count("format=yuv420p,") == 1
    # no fps filter in the graph: its gap copies would pile up in the split's branches
    assert "fps=" not in graph
    assert opt(a, "-fps_mode:v") == "cfr" and opt(a, "-r:v") == "30"
    assert "-fps_mode:v" not in argv(src())


def test_input_demuxer_is_forced_and_kept_on_one_file() -> None:
    a = argv(src())
    i = a.index("-i")
    assert a[i + 1] == "file:/in.mp4"
    assert opt(a, "-f") == "mov" and opt(a, "-protocol_whitelist") == "file"
    assert opt(a, "-enable_drefs") == "0"
    assert a.index("-protocol_whitelist") < i


def test_nvenc_shape_uses_nvdec_scale_cuda_and_same_gop() -> None:
    a = argv(src(pix_fmt="yuv420p10le"), encoder="h264_nvenc")
    assert opt(a, "-hwaccel") == "cuda" and opt(a, "-hwaccel_output_format") == "cuda"
    assert a.index("-hwaccel") < a.index("-i")
    graph = opt(a, "-filter_complex")
    assert "scale_cuda=1920:1080:format=yuv420p" in graph  # 10-bit → 8-bit on the GPU
    rung_part = graph.split("[sq]")[0]
    assert "scale_cuda=1280:720" in rung_part and "scale=" not in rung_part.replace("scale_cuda=", "")
    assert "hwdownload" in graph  # the storyboard tap comes back to system memory
    assert [a[i + 1] for i, x in enumerate(a) if x.startswith("-c:v:")] == ["h264_nvenc"] * 4
    assert opt(a, "-g:v") == "60" and opt(a, "-no-scenecut:v") == "1" and opt(a, "-forced-idr:v") == "1"
    assert "-threads:v:0" not in a and not any(x.startswith("-x264-params") for x in a)
    assert opt(a, "-b:v:1") == "3000k"


def test_encoder_choice_falls_back_to_cpu_without_a_gpu() -> None:
    assert choose_encoder("auto", lambda: False) == "libx264"
    assert choose_encoder("h264_nvenc", lambda: False) == "libx264"
    assert choose_encoder("auto", lambda: True) == "h264_nvenc"
    assert choose_encoder("libx264", lambda: True) == "libx264"


def test_threads_follow_pixels() -> None:
    lad = plan_ladder(src(), MediaConfig())
    assert split_threads(lad.rungs, 2) == (2, 1, 1, 1)  # 2 cores: 1080p may borrow a core
    t = split_threads(lad.rungs, 8)
    assert t[0] > t[1] >= t[3] >= 1 and 8 <= sum(t) <= 10


def test_storyboard_plan() -> None:
    assert plan_storyboard(plan_ladder(src(duration=5.0), MediaConfig())) is None
    sb = plan_storyboard(plan_ladder(src(duration=125.0), MediaConfig()))
    assert sb is not None and (sb.count, sb.cols, sb.rows) == (13, 10, 2)
    assert (sb.tile_width, sb.tile_height) == (160, 90)
    portrait = plan_storyboard(plan_ladder(src(720, 1280, duration=30.0), MediaConfig()))
    assert portrait is not None and (portrait.tile_width, portrait.tile_height) == (90, 160)


def test_big_rungs_use_light_subme_small_rungs_keep_the_preset() -> None:
    a = argv(src())
    assert opt(a, "-x264-params:v:0") == "subme=1" and opt(a, "-x264-params:v:1") == "subme=1"
    assert "-x264-params:v:2" not in a and "-x264-params:v:3" not in a
    portrait = argv(src(720, 1280))  # short side 720: the top rung is the big one
    assert opt(portrait, "-x264-params:v:0") == "subme=1" and "-x264-params:v:1" not in portrait
    assert not any(x.startswith("-x264-params") for x in argv(src(), light_subme_from=None))
