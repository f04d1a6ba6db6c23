"""Which container an input is, from its first bytes — never from its name, never by ffmpeg's guess.

Why: left to guess, libavformat picks a demuxer by content *and* name, and some demuxers open other
resources: an HLS playlist (`*.m3u8`) or an `ffconcat` list reads the files and URLs it names, an
image sequence reads its siblings, `subfile:`/`data:` are protocols. A stranger's upload could
then pull another user's media (or 127.0.0.1) into their own gallery. So the input format is
chosen here from an allowlist of self-contained container demuxers and forced on ffmpeg and PyAV,
with only the `file` protocol allowed and MP4 data references off.
"""

from __future__ import annotations

from pathlib import Path

from ebbtide.media.errors import MediaError

HINT = "upload a video file in MP4/MOV, MKV/WebM, AVI, MPEG-TS/PS, FLV, ASF/WMV or Ogg"
_MP4_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid"}


class UnsupportedContainer(MediaError):
    """The file is not one of the allowlisted containers (playlists, lists, images, raw streams…)."""


def sniff(head: bytes) -> str | None:
    """The ffmpeg demuxer for a file starting with `head` (≥ 400 bytes when available), or None."""
    if len(head) >= 8 and head[4:8] in _MP4_BOXES:
        return "mov"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"FLV\x01"):
        return "flv"
    if head.startswith(bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")):
        return "asf"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "mpeg"
    for size, off in ((188, 0), (192, 4), (204, 0)):
        if len(head) > off + 2 * size and all(head[off + k * size] == 0x47 for k in range(3)):
            return "mpegts"
    return None


def container_of(path: Path) -> str:
    """The allowlisted demuxer for `path`; UnsupportedContainer (naming no path) otherwise."""
    with open(path, "rb") as fh:
        head = fh.read(1024)
    fmt = sniff(head)
    if fmt is None:
        raise UnsupportedContainer(
            f"{path.name} is not a video file in a container ebbtide accepts", hint=HINT
        )
    return fmt


def demuxer_options(fmt: str) -> dict[str, str]:
    """Options that keep a demuxer on the one file: only `file:` and no MP4 external references."""
    opts = {"protocol_whitelist": "file"}
    if fmt == "mov":
        opts["enable_drefs"] = "0"
        opts["use_absolute_path"] = "0"
    return opts


def ffmpeg_input(path: Path, fmt: str, max_pixels: int | None = None) -> list[str]:
    """`-f FMT … -i file:/abs/path`: the demuxer forced, the name never parsed as a protocol."""
    args = ["-f", fmt]
    for k, v in demuxer_options(fmt).items():
        args += [f"-{k}", v]
    if max_pixels is not None:
        args += ["-max_pixels", str(max_pixels)]
    return [*args, "-i", f"file:{Path(path).resolve()}"]
