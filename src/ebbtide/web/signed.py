"""Signed URLs as the web app hands them out, and the keys of a published video.

The file store signs absolute URLs on `public_base_url`; we hand those out root-relative, so the
pages work however the server is reached (127.0.0.1, a LAN name, behind a proxy that keeps the
path). S3 presigned URLs stay absolute: the browser fetches segments straight from the bucket.
"""

from __future__ import annotations

import posixpath

from ebbtide.catalog.records import Media
from ebbtide.errors import NotFound
from ebbtide.services import Services, public_base_url


def relativize(services: Services, url: str) -> str:
    base = public_base_url(services.settings)
    return url[len(base) :] if url.startswith(base + "/files/") else url


def signed_get(services: Services, key: str, filename: str | None = None) -> str:
    ttl = services.settings.store.signed_url_ttl
    return relativize(services, services.store.signed_get_url(key, ttl, filename=filename))


def published_key(media: Media, rel: str) -> str:
    """A key inside the media's published HLS set; `rel` may already be a full key."""
    if not media.published_prefix:
        raise NotFound(
            f"video {media.id} is not ready to stream yet", hint="wait until its state is complete"
        )
    prefix = media.published_prefix.rstrip("/")
    return rel if rel.startswith(prefix + "/") else posixpath.join(prefix, rel)


def relative_to_prefix(media: Media, key: str) -> str:
    prefix = (media.published_prefix or "").rstrip("/") + "/"
    return key[len(prefix) :] if key.startswith(prefix) else key


def thumbnail_url(services: Services, media: Media) -> str | None:
    if not media.thumbnail_key or not media.published_prefix:
        return None
    return signed_get(services, published_key(media, media.thumbnail_key))
