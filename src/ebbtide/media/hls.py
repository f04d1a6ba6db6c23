"""HLS playlists: measuring renditions from their segments and writing the master playlist.

ffmpeg's own master is replaced: its BANDWIDTH is an estimate and it lists the audio group as a
variant of its own. Ours declares what the segments on disk actually need.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import m3u8

from ebbtide.catalog.records import Rendition
from ebbtide.media.command import AUDIO_GROUP, AUDIO_NAME, MASTER, PLAYLIST
from ebbtide.media.errors import MediaError
from ebbtide.media.ladder import Ladder


@dataclass(frozen=True)
class PlaylistStats:
    peak_bps: int  # the largest single-segment bitrate
    average_bps: int  # all segment bytes over the total duration
    duration: float
    segments: int


def load_playlist(path: Path) -> m3u8.M3U8:
    if not path.is_file():
        raise MediaError(f"playlist {path} is missing", hint="the encode did not finish; retry the job")
    try:
        return m3u8.load(str(path))
    except Exception as e:  # m3u8 raises plain ValueError/ParseError variants
        raise MediaError(f"playlist {path} does not parse: {e}") from e


PEAK_MIN_SEGMENT = 0.5  # s: a sliver of a final segment would overstate the peak
DEFAULT_VIDEO_CODEC = "avc1.640028"  # High@4.0: covers every default rung


def segment_stats(segments: Iterable[tuple[int, float]]) -> PlaylistStats:
    """BANDWIDTH is the largest segment's bitrate, AVERAGE-BANDWIDTH all bytes over all time.

    `segments` are (bytes, seconds) pairs; init segments are excluded (fetched once).
    """
    peak = 0.0
    total_bytes = 0
    total_dur = 0.0
    count = 0
    for size, dur in segments:
        total_bytes += size
        total_dur += dur
        count += 1
        if dur > PEAK_MIN_SEGMENT:
            peak = max(peak, size * 8 / dur)
    average = total_bytes * 8 / total_dur if total_dur > 0 else 0.0
    return PlaylistStats(round(max(peak, average)), round(average), total_dur, count)


def measure_playlist(path: Path) -> PlaylistStats:
    """Bitrates from the segment files a media playlist lists."""
    pl = load_playlist(path)
    pairs = []
    for seg in pl.segments:
        f = path.parent / str(seg.uri)
        if not f.is_file():
            raise MediaError(f"segment {f} listed in {path.name} is missing")
        pairs.append((f.stat().st_size, float(seg.duration or 0.0)))
    return segment_stats(pairs)


def _ffmpeg_codecs(outdir: Path) -> dict[str, str]:
    """CODECS strings ffmpeg wrote (it reads profile/level from the encoded streams), by playlist URI."""
    path = outdir / MASTER
    if not path.is_file():
        return {}
    pl = load_playlist(path)
    return {str(p.uri): str(p.stream_info.codecs) for p in pl.playlists if p.stream_info.codecs}


def video_codec(codecs: str | None) -> str:
    """The avc1 entry of a CODECS string ffmpeg wrote, else a level that covers every default rung."""
    if codecs:
        for c in codecs.split(","):
            if c.startswith("avc1"):
                return c
    return DEFAULT_VIDEO_CODEC


def playlist_version(ladder: Ladder) -> int:
    return 7 if ladder.segment_format == "fmp4" else 6


@dataclass(frozen=True)
class Variant:
    """One rung as the master lists it: measured stats and the CODECS ffmpeg reported."""

    name: str
    width: int
    height: int
    uri: str  # relative to the master
    stats: PlaylistStats
    codecs: str | None


def master_text(
    ladder: Ladder, variants: Sequence[Variant], audio: PlaylistStats | None, audio_uri: str | None
) -> tuple[str, list[Rendition]]:
    """The master playlist's text and the renditions it declares (the one place for its rules).

    BANDWIDTH/AVERAGE-BANDWIDTH are the video's measured peak/average plus the audio's; CODECS
    joins the video's avc1 profile/level with AAC-LC; FRAME-RATE is the ladder's; one shared
    audio group when there is audio.
    """
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{playlist_version(ladder)}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if audio is not None and audio_uri is not None:
        channels = ladder.audio.channels if ladder.audio else 2
        lines.append(
            f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{AUDIO_GROUP}",NAME="{AUDIO_NAME}",LANGUAGE="und",'
            f'DEFAULT=YES,AUTOSELECT=YES,CHANNELS="{channels}",URI="{audio_uri}"'
        )
    else:
        audio = None
    renditions: list[Rendition] = []
    for v in variants:
        bw = v.stats.peak_bps + (audio.peak_bps if audio else 0)
        avg = v.stats.average_bps + (audio.average_bps if audio else 0)
        codec = video_codec(v.codecs)
        attrs = [
            f"BANDWIDTH={bw}",
            f"AVERAGE-BANDWIDTH={avg}",
            f"RESOLUTION={v.width}x{v.height}",
            f"FRAME-RATE={float(ladder.fps):.3f}",
            f'CODECS="{codec},mp4a.40.2"' if audio else f'CODECS="{codec}"',
        ]
        if audio:
            attrs.append(f'AUDIO="{AUDIO_GROUP}"')
        lines += ["#EXT-X-STREAM-INF:" + ",".join(attrs), v.uri]
        renditions.append(Rendition(v.name, v.width, v.height, bw, avg, v.uri))
    return "\n".join(lines) + "\n", renditions


def write_master(outdir: Path, ladder: Ladder) -> list[Rendition]:
    """Rewrite master.m3u8 with measured BANDWIDTH/AVERAGE-BANDWIDTH and one shared audio group."""
    codecs = _ffmpeg_codecs(outdir)
    audio = measure_playlist(outdir / AUDIO_NAME / PLAYLIST) if ladder.audio else None
    variants = []
    for r in ladder.rungs:
        uri = f"{r.name}/{PLAYLIST}"
        v = measure_playlist(outdir / uri)
        variants.append(Variant(r.name, r.width, r.height, uri, v, codecs.get(uri)))
    text, renditions = master_text(ladder, variants, audio, f"{AUDIO_NAME}/{PLAYLIST}" if audio else None)
    tmp = outdir / (MASTER + ".tmp")
    tmp.write_text(text)
    tmp.replace(outdir / MASTER)
    return renditions
