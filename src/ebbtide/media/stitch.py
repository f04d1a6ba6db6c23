"""Stitching chunked renditions: manifests of what each chunk wrote, and the playlists that join them.

A chunk's worker describes its outputs in a small manifest (segment names, durations, sizes, the
init segment's hash, the CODECS string ffmpeg read from the stream). Stitch reads only manifests,
never segments, so joining a two-hour match costs a few kilobytes of reads. Everything here but
`read_outputs` is pure text and arithmetic.

Playlists live in a folder of the set (`live/` while it grows, `s-<attempt>/` when final) and
point at the chunks' segments with relative URIs (`../../c/003-<attempt>/720p/seg_00042.m4s`), so
nothing is copied or re-muxed and the stream API's "stays inside the set" rule still holds.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ebbtide.catalog.records import Rendition
from ebbtide.media.command import AUDIO_NAME, PLAYLIST
from ebbtide.media.errors import MediaError
from ebbtide.media.hls import PlaylistStats, Variant, load_playlist, master_text, segment_stats
from ebbtide.media.ladder import Ladder

MANIFEST = "manifest.json"
DURATION_TOLERANCE = 0.5


@dataclass(frozen=True)
class Segment:
    uri: str  # relative to the rendition's folder in the chunk
    duration: float
    size: int


@dataclass(frozen=True)
class PartRendition:
    name: str
    init: str | None  # file name of the init segment (fMP4), relative to the rendition folder
    init_sha256: str | None
    codecs: str | None
    segments: tuple[Segment, ...]

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)


@dataclass(frozen=True)
class Manifest:
    """What one part (a chunk, or the audio) wrote. `prefix` is relative to the set's root."""

    index: int  # chunk index; -1 for the audio
    prefix: str
    renditions: tuple[PartRendition, ...]
    storyboard_frames: int = 0  # tiles in the part's storyboard sprite (`STORYBOARD`), 0 = none

    def rendition(self, name: str) -> PartRendition:
        for r in self.renditions:
            if r.name == name:
                return r
        raise MediaError(
            f"part {self.index} has no rendition {name!r}", hint="the chunk's outputs are incomplete"
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "index": self.index,
                "prefix": self.prefix,
                "renditions": [
                    {
                        "name": r.name, "init": r.init, "init_sha256": r.init_sha256, "codecs": r.codecs,
                        "segments": [[s.uri, s.duration, s.size] for s in r.segments],
                    }
                    for r in self.renditions
                ],
                "storyboard": self.storyboard_frames,
            },
            separators=(",", ":"),
        )  # fmt: skip

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        try:
            d: dict[str, Any] = json.loads(text)
            rends = tuple(
                PartRendition(
                    str(r["name"]),
                    r.get("init"),
                    r.get("init_sha256"),
                    r.get("codecs"),
                    tuple(Segment(str(u), float(t), int(n)) for u, t, n in r["segments"]),
                )
                for r in d["renditions"]
            )
            return cls(int(d["index"]), str(d["prefix"]), rends, int(d.get("storyboard", 0)))
        except (KeyError, TypeError, ValueError) as e:
            raise MediaError(f"a chunk manifest does not parse: {e}", hint="retry that chunk") from e

    def with_prefix(self, prefix: str) -> Manifest:
        return replace(self, prefix=prefix)


def read_outputs(outdir: Path, names: Sequence[str], index: int, prefix: str = "") -> Manifest:
    """Describe the HLS folders ffmpeg wrote in outdir (one per name) as a manifest."""
    codecs = _ffmpeg_codecs(outdir)
    rends = []
    for name in names:
        folder = outdir / name
        pl = load_playlist(folder / PLAYLIST)
        segs = []
        for s in pl.segments:
            f = folder / str(s.uri)
            if not f.is_file() or f.stat().st_size == 0:
                raise MediaError(f"segment {name}/{s.uri} is missing or empty", hint="retry the chunk")
            segs.append(Segment(str(s.uri), float(s.duration or 0.0), f.stat().st_size))
        if not segs:
            raise MediaError(f"{name} has no segments", hint="the chunk may hold no frames; retry it")
        section = pl.segments[0].init_section
        init = str(section.uri) if section is not None and section.uri else None
        if init is not None and not (folder / init).is_file():
            raise MediaError(f"init segment {name}/{init} is missing", hint="retry the chunk")
        sha = hashlib.sha256((folder / init).read_bytes()).hexdigest() if init else None
        rends.append(PartRendition(name, init, sha, codecs.get(name), tuple(segs)))
    return Manifest(index, prefix, tuple(rends))


def _ffmpeg_codecs(outdir: Path) -> dict[str, str]:
    """CODECS per stream folder from the master ffmpeg wrote (it reads profile/level from the stream)."""
    out: dict[str, str] = {}
    for path in outdir.glob("*.m3u8"):
        pl = load_playlist(path)
        for p in pl.playlists:
            if p.stream_info.codecs:
                out[str(p.uri).split("/", 1)[0]] = str(p.stream_info.codecs)
    return out


# ---- pure: which chunks are ready, and the playlists --------------------------------------------
def ready_prefix(done: Sequence[int], count: int) -> int:
    """How many chunks from the start are all done (0 if chunk 0 is not)."""
    have = set(done)
    n = 0
    while n < count and n in have:
        n += 1
    return n


def stats(segments: Sequence[Segment]) -> PlaylistStats:
    """The master's rule (`hls.segment_stats`) over segments that sit in several chunks."""
    return segment_stats((s.size, s.duration) for s in segments)


def media_playlist(
    parts: Sequence[Manifest],
    name: str,
    up: str,
    *,
    version: int,
    final: bool,
    vod: bool,
    until: float | None = None,
) -> str:
    """One rendition over `parts` (in order). `up` leads from the playlist's folder to the set's root.

    A single EXT-X-MAP when every chunk's init segment is identical (the normal case); otherwise a
    new MAP where it changes (e.g. a chunk fell back from NVENC to x264), which HLS allows.
    `until` keeps only the segments that start before it (the audio of a growing set: it grows
    with the video, so a player sees both renditions live and both reach the end together).
    """
    rends = [_until(p.rendition(name), until) for p in parts]
    durations = [s.duration for r in rends for s in r.segments]
    target = max(1, math.ceil(max(durations, default=1.0) - 1e-6))
    first = min((int(_seq(r.segments[0].uri)) for r in rends if r.segments), default=0)
    lines = [
        "#EXTM3U", f"#EXT-X-VERSION:{version}", f"#EXT-X-TARGETDURATION:{target}",
        f"#EXT-X-MEDIA-SEQUENCE:{first}",
        f"#EXT-X-PLAYLIST-TYPE:{'VOD' if vod else 'EVENT'}", "#EXT-X-INDEPENDENT-SEGMENTS",
    ]  # fmt: skip
    current_init: str | None = None
    for part, r in zip(parts, rends, strict=True):
        base = f"{up}{part.prefix}{name}/"
        if r.init and r.init_sha256 != current_init:
            lines.append(f'#EXT-X-MAP:URI="{base}{r.init}"')
            current_init = r.init_sha256
        for s in r.segments:
            lines += [f"#EXTINF:{s.duration:.6f},", base + s.uri]
    if final:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _until(r: PartRendition, until: float | None) -> PartRendition:
    if until is None:
        return r
    keep, start = [], 0.0
    for s in r.segments:
        if start >= until - 1e-3:
            break
        keep.append(s)
        start += s.duration
    return replace(r, segments=tuple(keep))


def _seq(uri: str) -> str:
    digits = "".join(ch for ch in Path(uri).stem if ch.isdigit())
    return digits or "0"


def master_playlist(
    ladder: Ladder, parts: Sequence[Manifest], audio: Manifest | None
) -> tuple[str, list[Rendition]]:
    """The master over `parts`, by the same rules as the unchunked one (`hls.master_text`): stats
    measured over every chunk's segments, CODECS from the first chunk that reports one. Every
    playlist it names (the rungs' and the audio's) sits beside it, URIs relative to the master."""
    variants = []
    for r in ladder.rungs:
        rends = [p.rendition(r.name) for p in parts]
        codecs = next((x.codecs for x in rends if x.codecs), None)
        segs = [s for x in rends for s in x.segments]
        variants.append(Variant(r.name, r.width, r.height, f"{r.name}/{PLAYLIST}", stats(segs), codecs))
    a_stats = stats(audio.rendition(AUDIO_NAME).segments) if audio else None
    a_uri = f"{AUDIO_NAME}/{PLAYLIST}" if audio else None
    return master_text(ladder, variants, a_stats, a_uri)


def check_joined(parts: Sequence[Manifest], names: Sequence[str], duration: float) -> None:
    """The joined set must cover the source and cut every rendition at the same instants."""
    ref: list[float] | None = None
    for name in names:
        durs = [s.duration for p in parts for s in p.rendition(name).segments]
        total = sum(durs)
        if abs(total - duration) > DURATION_TOLERANCE:
            raise MediaError(
                f"{name}: the chunks' segments last {total:.2f} s but the source lasts {duration:.2f} s",
                hint="a chunk lost or duplicated frames; retry the media",
            )
        if ref is not None and (
            len(ref) != len(durs) or any(abs(a - b) > 0.1 for a, b in zip(ref, durs, strict=True))
        ):
            raise MediaError(f"{name} cuts segments at different instants than {names[0]}")
        ref = durs if ref is None else ref
