"""Streaming API (`/api/stream/…`): a ready video's playlists with signed, expiring URLs.

The master playlist needs the owner's credentials; the variant playlists it names carry their own
short signature (bound to the video and the playlist path), so any HLS player can follow them,
and their segments and init sections are signed store URLs (S3 presigned or the local HMAC).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse

from ebbtide.catalog.records import Media
from ebbtide.errors import NotFound
from ebbtide.services import Services
from ebbtide.storage import signing
from ebbtide.web.auth import OptionalUser, ServicesDep, Unauthorized
from ebbtide.web.playcache import CacheKey, PlaylistCache, Rendered
from ebbtide.web.playlists import CONTENT_TYPES, rewrite
from ebbtide.web.signed import published_key, relative_to_prefix, signed_get

router = APIRouter(prefix="/api/stream", tags=["stream"])

MediaId = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
PLAYLIST = CONTENT_TYPES[".m3u8"]
_PRIVATE = {"Cache-Control": "private, max-age=30"}
# A variant reached by its own signature is the same bytes for everyone holding that URL (segment
# URLs inside are signed for aligned windows), so a shared cache may keep it briefly.
_SIGNED = {"Cache-Control": "public, max-age=60"}
_GROWING = {"Cache-Control": "private, max-age=1"}  # an EVENT playlist gains segments: reload it


def playlist_subject(media_id: str, rel: str) -> str:
    return f"stream/{media_id}/{rel}"


def playlist_url(services: Services, media_id: str, rel: str) -> str:
    secret = services.settings.web.session_secret or ""
    store = services.settings.store
    expires = signing.expiry(services.clock.now(), store.signed_url_ttl, store.sign_window)
    sig = signing.sign(secret, "GET", playlist_subject(media_id, rel), expires)
    return f"/api/stream/videos/{media_id}/hls/{quote(rel, safe='/')}?" + urlencode(
        {"expires": expires, "sig": sig}
    )


def verify_playlist(services: Services, media_id: str, rel: str, query: Mapping[str, str]) -> None:
    """A variant playlist's own signature (raises `SignatureError`)."""
    secret = services.settings.web.session_secret or ""
    signing.verify_query(secret, "GET", playlist_subject(media_id, rel), query, now=services.clock.now())


def _media(services: Services, user: OptionalUser, media_id: str, rel: str, request: Request) -> Media:
    """The owner's media by credentials, or anyone's by a valid playlist signature."""
    q = request.query_params
    if user is None and "sig" in q:
        verify_playlist(services, media_id, rel, dict(q))
        media = services.catalog.get_media(media_id)
    elif user is None:
        raise Unauthorized("sign in first", hint="send Authorization: Bearer ebt_… or log in at /login")
    else:
        media = services.catalog.get_media(media_id, owner_id=user.id)
    growing = str(media.state) in ("queued", "transcoding") and media.playable_seconds > 0
    if (str(media.state) != "complete" and not growing) or not media.published_prefix or not media.master_key:
        raise NotFound(f"video {media_id} is not ready to stream", hint=f"its state is {media.state}")
    return media


def window_expiry(services: Services) -> int:
    """The expiry every URL signed now carries: one value per signing window."""
    store = services.settings.store
    return signing.expiry(services.clock.now(), store.signed_url_ttl, store.sign_window)


def cache_key(media_id: str, rel: str, signed: bool, expires: int) -> CacheKey:
    return (media_id, rel, signed, expires)


def _render(
    services: Services, media: Media, rel: str, signed: bool = False, cache: PlaylistCache | None = None
) -> Response:
    growing = str(media.state) != "complete"
    headers = _GROWING if growing else (_SIGNED if signed else _PRIVATE)
    prefix = media.published_prefix or ""
    key = cache_key(media.id, rel, signed, window_expiry(services))
    hit = cache.get(key) if cache is not None and not growing else None
    if hit is not None and hit.published_prefix == prefix:
        return Response(hit.body, media_type=PLAYLIST, headers=headers)
    text = services.store.get_bytes(published_key(media, rel)).decode("utf-8", "replace")

    def resolve(target: str) -> str:
        if target.endswith(".m3u8"):
            return playlist_url(services, media.id, target)
        return signed_get(services, published_key(media, target))

    body = rewrite(text, rel, resolve).encode()
    if cache is not None and not growing:
        cache.put(key, Rendered(body, headers["Cache-Control"], prefix, services.clock.now()))
    return Response(body, media_type=PLAYLIST, headers=headers)


def _cache(request: Request) -> PlaylistCache | None:
    return getattr(request.app.state, "playlists", None)


@router.get(
    "/videos/{media_id}/master.m3u8", response_class=Response, responses={200: {"content": {PLAYLIST: {}}}}
)
def master(media_id: MediaId, request: Request, user: OptionalUser, services: ServicesDep) -> Response:
    media = _media(services, user, media_id, "master.m3u8", request)
    rel = relative_to_prefix(media, media.master_key or "master.m3u8")
    return _render(services, media, rel, cache=_cache(request))


@router.get(
    "/videos/{media_id}/hls/{rel:path}", response_class=Response, responses={200: {"content": {PLAYLIST: {}}}}
)
def variant(
    media_id: MediaId,
    rel: str,
    request: Request,
    user: OptionalUser,
    services: ServicesDep,
    expires: Annotated[int | None, Query()] = None,
    sig: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    rel = posixpath.normpath(rel)
    if not rel.endswith(".m3u8") or rel.startswith("..") or rel.startswith("/"):
        raise NotFound(f"no playlist {rel!r}", hint="follow the URLs in master.m3u8")
    media = _media(services, user, media_id, rel, request)
    return _render(services, media, rel, signed=user is None, cache=_cache(request))


@router.get("/videos/{media_id}/thumbnail", status_code=307, response_class=RedirectResponse)
def thumbnail(media_id: MediaId, request: Request, user: OptionalUser, services: ServicesDep) -> Response:
    media = _media(services, user, media_id, "thumbnail", request)
    if not media.thumbnail_key:
        raise NotFound(f"video {media_id} has no thumbnail")
    url = signed_get(services, published_key(media, media.thumbnail_key))
    return RedirectResponse(url, status_code=307, headers={"Cache-Control": "private, max-age=60"})
