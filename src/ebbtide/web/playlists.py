"""Pure HLS playlist rewriting: every URI in a playlist goes through one resolver.

Playlists in the store hold relative URIs (segments, init sections, variant playlists). The
streaming API hands them out with each URI replaced by a signed, expiring URL, so a player never
needs credentials for segments and a leaked URL stops working.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable

from ebbtide.errors import InvalidKey
from ebbtide.storage.content import CONTENT_TYPES, content_type_for

__all__ = ["CONTENT_TYPES", "content_type_for", "is_absolute", "resolve_relative", "rewrite"]

_URI_ATTR = re.compile(r'URI="([^"]*)"')

def is_absolute(uri: str) -> bool:
    return "://" in uri or uri.startswith("/") or uri.startswith("data:")


def resolve_relative(playlist_rel: str, uri: str) -> str:
    """The path (relative to the published prefix) that `uri` in `playlist_rel` points at."""
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(playlist_rel), uri.split("?", 1)[0]))
    if joined.startswith("../") or joined in ("..", ".") or joined.startswith("/"):
        raise InvalidKey(f"playlist URI {uri!r} points outside the video's folder")
    return joined


def rewrite(text: str, playlist_rel: str, resolve: Callable[[str], str]) -> str:
    """Replace each relative URI (URI lines and URI="…" attributes) by `resolve(relative_path)`."""

    def one(uri: str) -> str:
        return uri if not uri or is_absolute(uri) else resolve(resolve_relative(playlist_rel, uri))

    out: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            out.append(line)
        elif stripped.startswith("#"):
            out.append(_URI_ATTR.sub(lambda m: f'URI="{one(m.group(1))}"', line))
        else:
            out.append(one(stripped))
    return "\n".join(out) + "\n"
