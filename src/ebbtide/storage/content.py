"""Content-Type and Cache-Control of stored objects, by key: one table for the store and the web.

Players on another origin need the right type (hls.js and Shaka refuse `binary/octet-stream`
playlists in some browsers, and S3 serves the type it was given at upload). Outputs are published
under a fresh attempt prefix and never overwritten, so segments, init sections and images are
immutable; playlists get a short max-age because a progressive (EVENT) playlist grows.
"""

from __future__ import annotations

import posixpath

CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/mp4",
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".ts": "video/mp2t",
    ".aac": "audio/aac",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".vtt": "text/vtt",
    ".json": "application/json",
}
PLAYLIST_CACHE = "public, max-age=2"
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"


def content_type_for(key: str) -> str:
    return CONTENT_TYPES.get(posixpath.splitext(key)[1].lower(), "application/octet-stream")


def cache_control_for(key: str) -> str | None:
    """For published outputs (HLS sets, thumbnails); None for anything else (sources, status)."""
    ext = posixpath.splitext(key)[1].lower()
    if ext == ".m3u8":
        return PLAYLIST_CACHE
    if ext in (".m4s", ".ts", ".m4a", ".aac", ".jpg", ".jpeg", ".png", ".vtt") or (
        ext == ".mp4" and "/hls/" in key
    ):
        return IMMUTABLE_CACHE
    return None
