"""Checks on a finished HLS set, run before anything is published: a bad ladder must fail here,
not in a viewer's player."""

from __future__ import annotations

import io
from pathlib import Path

import av

from ebbtide.media.command import MASTER
from ebbtide.media.errors import MediaError
from ebbtide.media.hls import load_playlist

DURATION_TOLERANCE = 0.5
TARGET_TOLERANCE = 0.5
ALIGN_TOLERANCE = 0.1  # seconds between the same segment in two video renditions


def validate_hls(outdir: Path, source_duration: float) -> None:
    """Raise MediaError on the first failed check; return None when the set is playable."""
    outdir = Path(outdir)
    master = load_playlist(outdir / MASTER)
    if not master.is_variant or not master.playlists:
        raise MediaError(f"{MASTER} lists no variant streams")
    uris = [str(p.uri) for p in master.playlists]
    audio_uris = [str(m.uri) for m in master.media if m.type == "AUDIO" and m.uri]
    video_durations: dict[str, list[float]] = {}
    for uri in uris + audio_uris:
        is_video = uri in uris
        durations = _check_media_playlist(outdir / uri, source_duration, keyframes=is_video)
        if is_video:
            video_durations[uri] = durations
    _check_aligned(video_durations)


def _check_media_playlist(path: Path, source_duration: float, *, keyframes: bool) -> list[float]:
    pl = load_playlist(path)
    name = path.parent.name + "/" + path.name
    if not pl.segments:
        raise MediaError(f"{name} has no segments")
    if not pl.is_endlist or (pl.playlist_type or "").lower() != "vod":
        raise MediaError(f"{name} is not a finished VOD playlist (EXT-X-ENDLIST / PLAYLIST-TYPE:VOD)")
    target = float(pl.target_duration or 0)
    durations = [float(s.duration or 0.0) for s in pl.segments]
    total = sum(durations)
    if abs(total - source_duration) > DURATION_TOLERANCE:
        raise MediaError(
            f"{name}: segments last {total:.2f} s but the source lasts {source_duration:.2f} s",
            hint="the encode lost or duplicated frames",
        )
    for seg, d in zip(pl.segments, durations, strict=True):
        if d > target + TARGET_TOLERANCE:
            raise MediaError(f"{name}: segment {seg.uri} lasts {d:.2f} s, above the target {target:g} s")
    if keyframes:
        for seg in pl.segments:
            init = seg.init_section.uri if seg.init_section else None
            _check_starts_with_keyframe(path.parent, str(seg.uri), str(init) if init else None)
    return durations


def _check_starts_with_keyframe(folder: Path, seg_uri: str, init_uri: str | None) -> None:
    seg = folder / seg_uri
    if not seg.is_file() or seg.stat().st_size == 0:
        raise MediaError(f"segment {seg} is missing or empty")
    data = (folder / init_uri).read_bytes() + seg.read_bytes() if init_uri else seg.read_bytes()
    try:
        with av.open(io.BytesIO(data), mode="r") as c:
            if not c.streams.video:
                raise MediaError(f"segment {seg} holds no video")
            for pkt in c.demux(c.streams.video[0]):
                if pkt.size == 0:
                    continue
                if not pkt.is_keyframe:
                    raise MediaError(f"segment {seg} does not start with a keyframe")
                return
    except av.error.FFmpegError as e:
        raise MediaError(f"segment {seg} cannot be read ({e})") from e
    raise MediaError(f"segment {seg} holds no video packets")


def _check_aligned(video_durations: dict[str, list[float]]) -> None:
    """Every rendition must cut at the same instants, or switching renditions stalls playback."""
    items = list(video_durations.items())
    if len(items) < 2:
        return
    ref_uri, ref = items[0]
    for uri, durs in items[1:]:
        if len(durs) != len(ref):
            raise MediaError(
                f"{uri} has {len(durs)} segments but {ref_uri} has {len(ref)}: keyframes not aligned"
            )
        t_ref = t = 0.0
        for a, b in zip(ref, durs, strict=True):
            t_ref += a
            t += b
            if abs(t_ref - t) > ALIGN_TOLERANCE:
                raise MediaError(
                    f"{uri} and {ref_uri} cut segments at different times: keyframes not aligned"
                )
