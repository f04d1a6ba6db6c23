"""HLS playlists: measuring renditions from their segments and writing the master playlist.

ffmpeg's own master is replaced: its BANDWIDTH is an estimate and it lists the audio group as a
variant of its own. Ours declares what the segments on disk actually need.
"""

from __future__ import annotations

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


def measure_playlist(path: Path) -> PlaylistStats:
    """Bitrates from the segment files a media playlist lists (init segments excluded: fetched once)."""
    pl = load_playlist(path)
    peak = 0.0
    total_bytes = 0
    total_dur = 0.0
    for seg in pl.segments:
        f = path.parent / str(seg.uri)
        if not f.is_file():
            raise MediaError(f"segment {f} listed in {path.name} is missing")
        size = f.stat().st_size
        dur = float(seg.duration or 0.0)
        total_bytes += size
        total_dur += dur
        if dur > 0.5:  # a sliver of a final segment would overstate the peak
            peak = max(peak, size * 8 / dur)
    average = total_bytes * 8 / total_dur if total_dur > 0 else 0.0
    return PlaylistStats(round(max(peak, average)), round(average), total_dur, len(pl.segments))


def _ffmpeg_codecs(outdir: Path) -> dict[str, str]:
    """CODECS strings ffmpeg wrote (it reads profile/level from the encoded streams), by playlist URI."""
    path = outdir / MASTER
    if not path.is_file():
        return {}
    pl = load_playlist(path)
    return {str(p.uri): str(p.stream_info.codecs) for p in pl.playlists if p.stream_info.codecs}


def _video_codec(codecs: str | None) -> str:
    if codecs:
        for c in codecs.split(","):
            if c.startswith("avc1"):
                return c
    return "avc1.640028"  # High@4.0: covers every default rung


def write_master(outdir: Path, ladder: Ladder) -> list[Rendition]:
    """Rewrite master.m3u8 with measured BANDWIDTH/AVERAGE-BANDWIDTH and one shared audio group."""
    codecs = _ffmpeg_codecs(outdir)
    audio = measure_playlist(outdir / AUDIO_NAME / PLAYLIST) if ladder.audio else None
    version = 7 if ladder.segment_format == "fmp4" else 6
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{version}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if ladder.audio is not None:
        lines.append(
            f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{AUDIO_GROUP}",NAME="{AUDIO_NAME}",LANGUAGE="und",'
            f'DEFAULT=YES,AUTOSELECT=YES,CHANNELS="{ladder.audio.channels}",URI="{AUDIO_NAME}/{PLAYLIST}"'
        )
    renditions: list[Rendition] = []
    for r in ladder.rungs:
        uri = f"{r.name}/{PLAYLIST}"
        v = measure_playlist(outdir / uri)
        bw = v.peak_bps + (audio.peak_bps if audio else 0)
        avg = v.average_bps + (audio.average_bps if audio else 0)
        codec = _video_codec(codecs.get(uri))
        attrs = [
            f"BANDWIDTH={bw}",
            f"AVERAGE-BANDWIDTH={avg}",
            f"RESOLUTION={r.width}x{r.height}",
            f"FRAME-RATE={float(ladder.fps):.3f}",
            f'CODECS="{codec},mp4a.40.2"' if audio else f'CODECS="{codec}"',
        ]
        if audio:
            attrs.append(f'AUDIO="{AUDIO_GROUP}"')
        lines += ["#EXT-X-STREAM-INF:" + ",".join(attrs), uri]
        renditions.append(Rendition(r.name, r.width, r.height, bw, avg, uri))
    tmp = outdir / (MASTER + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(outdir / MASTER)
    return renditions
