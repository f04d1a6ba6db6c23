"""Gallery API (`/api/gallery/…`): uploads, my videos, one video, rename, delete.

Two ways in, both probed as a video BEFORE anything is queued (a non-video gets 422 and leaves no
object behind): a direct multipart POST streamed to disk in chunks, or a signed PUT straight to
the store (in parts for big files) followed by `complete`.
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from ebbtide.catalog.records import Media, User
from ebbtide.errors import EbbtideError, NotFound
from ebbtide.services import Services
from ebbtide.storage.base import MultipartUploads, validate_key
from ebbtide.web.auth import CurrentUser, ServicesDep
from ebbtide.web.playlists import content_type_for
from ebbtide.web.signed import thumbnail_url
from ebbtide.web.uploads import ReceivedFile, receive_multipart, safe_filename

if TYPE_CHECKING:
    from ebbtide.media.probe import ProbeResult  # PyAV: loaded only when a probe runs

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/gallery", tags=["gallery"])

MediaId = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
_SOURCE = r"^users/{uid}/media/([0-9a-f]{{32}})/source/[A-Za-z0-9._-]+$"


class RenditionOut(BaseModel):
    name: str
    width: int
    height: int
    bandwidth: int


class VideoOut(BaseModel):
    id: str
    title: str
    state: str
    progress: float
    duration: float | None
    width: int | None
    height: int | None
    size_bytes: int
    created_at: float
    updated_at: float
    error: str | None
    renditions: list[RenditionOut]
    thumbnail_url: str | None
    playlist_url: str | None


class RenameIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)


class SignIn(BaseModel):
    filename: str = Field(min_length=1, max_length=255)
    size: int = Field(ge=1)
    content_type: str | None = Field(None, max_length=100)


class PartUrl(BaseModel):
    part_number: int
    url: str


class SignOut(BaseModel):
    key: str
    method: str = "PUT"
    url: str | None = None
    upload_id: str | None = None
    part_size: int | None = None
    parts: list[PartUrl] = []


class PartIn(BaseModel):
    part_number: int = Field(ge=1, le=10_000)
    etag: str = Field(min_length=1, max_length=200)


class CompleteIn(BaseModel):
    key: str = Field(min_length=1, max_length=1024)
    title: str | None = Field(None, max_length=200)
    upload_id: str | None = Field(None, max_length=1024)
    parts: list[PartIn] = Field(default_factory=list, max_length=10_000)


class AbortIn(BaseModel):
    key: str = Field(min_length=1, max_length=1024)
    upload_id: str = Field(min_length=1, max_length=1024)


def video_out(services: Services, m: Media) -> VideoOut:
    ready = m.state == "complete" and m.published_prefix is not None
    return VideoOut(
        id=m.id,
        title=m.title,
        state=str(m.state),
        progress=m.progress,
        duration=m.duration,
        width=m.width,
        height=m.height,
        size_bytes=m.size_bytes,
        created_at=m.created_at,
        updated_at=m.updated_at,
        error=m.error,
        renditions=[
            RenditionOut(name=r.name, width=r.width, height=r.height, bandwidth=r.bandwidth)
            for r in m.renditions
        ],
        thumbnail_url=thumbnail_url(services, m) if ready else None,
        playlist_url=f"/api/stream/videos/{m.id}/master.m3u8" if ready else None,
    )


def tmp_dir(services: Services) -> Path:
    d = services.settings.data_path / "tmp" / "web"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _probe_or_422(services: Services, path: Path, filename: str) -> ProbeResult:
    from ebbtide.media.errors import MediaError
    from ebbtide.web.probe_proc import probe_upload

    try:
        return probe_upload(path, services.settings.media.limits)
    except MediaError as e:
        # the temp path means nothing to the uploader (and is ours to keep private)
        reason = e.message.replace(str(path), filename).replace(path.name, filename)
        raise MediaError(
            f"{filename} is not a video ebbtide can use: {reason}",
            hint=e.hint or "upload a video file (mp4, mov, mkv, webm)",
        ) from None


def _title(title: str | None, filename: str) -> str:
    t = (title or "").strip()[:200]
    return t or Path(filename).stem[:200] or "untitled"


def _accept_received(services: Services, user: User, got: ReceivedFile) -> Media:
    """Probe the spooled file, then store, record and queue it. Runs in a worker thread."""
    from ebbtide.worker import intake

    info = _probe_or_422(services, got.path, got.filename)
    media_id = intake.new_id()
    key = intake.source_key(user.id, media_id, got.filename)
    services.store.put_file(key, got.path, content_type_for(got.filename))
    media = intake.submit_uploaded(
        services,
        user.id,
        key,
        _title(got.fields.get("title"), got.filename),
        got.size,
        duration=info.duration,
    )
    log.info("upload accepted", extra={"media_id": media.id, "owner_id": user.id, "bytes": got.size})
    return media


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "title": {"type": "string", "maxLength": 200},
                    },
                }
            }
        },
    }
}


@router.post("/uploads", status_code=201, response_model=VideoOut, openapi_extra=_UPLOAD_BODY)
async def upload(request: Request, user: CurrentUser, services: ServicesDep) -> VideoOut:
    """Direct upload: the body is parsed as it streams and written to a temp file, never held whole."""
    limit = services.settings.web.max_upload
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 1024 * 1024:
        from ebbtide.web.uploads import TooLarge

        raise TooLarge(f"the upload is larger than the limit of {limit} bytes", hint="raise web.max_upload")
    got = await receive_multipart(
        request.headers.get("content-type", ""), request.stream(), tmp_dir(services), limit
    )
    try:
        media = await run_in_threadpool(_accept_received, services, user, got)
    finally:
        got.discard()
    return video_out(services, media)


@router.post("/uploads/sign", response_model=SignOut)
def sign_upload(body: SignIn, user: CurrentUser, services: ServicesDep) -> SignOut:
    """A signed PUT URL (or one per part above store.multipart_threshold) for an upload to the store."""
    from ebbtide.worker import intake

    limit = services.settings.web.max_upload
    if body.size > limit:
        from ebbtide.web.uploads import TooLarge

        raise TooLarge(f"{body.size} bytes is above the upload limit of {limit}", hint="raise web.max_upload")
    name = safe_filename(body.filename)
    key = intake.source_key(user.id, intake.new_id(), name)
    ctype = content_type_for(name)
    cfg = services.settings.store
    store = services.store
    if body.size > cfg.multipart_threshold and isinstance(store, MultipartUploads):
        part_size = max(cfg.multipart_chunk, math.ceil(body.size / 10_000))
        count = math.ceil(body.size / part_size)
        upload_id = store.start_multipart(key, ctype)
        parts = [
            PartUrl(part_number=n, url=store.signed_part_url(key, upload_id, n, cfg.signed_url_ttl))
            for n in range(1, count + 1)
        ]
        return SignOut(key=key, upload_id=upload_id, part_size=part_size, parts=parts)
    return SignOut(key=key, url=store.signed_put_url(key, cfg.signed_url_ttl, content_type=ctype))


def _own_source_key(user: User, key: str) -> str:
    try:
        validate_key(key)
    except EbbtideError:
        raise NotFound("no such upload") from None
    if not re.match(_SOURCE.format(uid=re.escape(user.id)), key):
        raise NotFound("no such upload", hint="complete the key that /uploads/sign gave you")
    return key


@router.post("/uploads/complete", status_code=201, response_model=VideoOut)
def complete_upload(body: CompleteIn, user: CurrentUser, services: ServicesDep) -> VideoOut:
    """After the signed PUT(s): assemble parts, probe, then queue — or delete the object and 422."""
    from ebbtide.media.errors import MediaError
    from ebbtide.worker import intake

    key = _own_source_key(user, body.key)
    media_id = key.split("/")[3]
    try:
        services.catalog.get_media(media_id)
        raise EbbtideError(f"upload {key} was already completed", hint="each upload is completed once")
    except NotFound:
        pass
    store = services.store
    if body.upload_id:
        if not isinstance(store, MultipartUploads):
            raise NotFound("no such multipart upload")
        parts = sorted((p.part_number, p.etag.strip('"')) for p in body.parts)
        store.complete_multipart(key, body.upload_id, parts)
    if not store.exists(key):
        raise NotFound(f"nothing was uploaded to {key}", hint="PUT the file to the signed URL first")
    filename = key.rsplit("/", 1)[-1]
    with tempfile.TemporaryDirectory(dir=tmp_dir(services)) as d:
        local = Path(d) / "upload"  # neutral: the container is sniffed from the bytes, not the name
        store.get_file(key, local)
        size = local.stat().st_size
        try:
            info = _probe_or_422(services, local, filename)
        except MediaError:
            store.delete(key)
            raise
    media = intake.submit_uploaded(
        services, user.id, key, _title(body.title, filename), size, duration=info.duration
    )
    return video_out(services, media)


@router.post("/uploads/abort", status_code=204)
def abort_upload(body: AbortIn, user: CurrentUser, services: ServicesDep) -> Response:
    key = _own_source_key(user, body.key)
    store = services.store
    if isinstance(store, MultipartUploads):
        store.abort_multipart(key, body.upload_id)
    return Response(status_code=204)


@router.get("/videos", response_model=list[VideoOut])
def list_videos(user: CurrentUser, services: ServicesDep) -> list[VideoOut]:
    return [video_out(services, m) for m in services.catalog.list_media(owner_id=user.id)]


@router.get("/videos/{media_id}", response_model=VideoOut)
def get_video(media_id: MediaId, user: CurrentUser, services: ServicesDep) -> VideoOut:
    return video_out(services, services.catalog.get_media(media_id, owner_id=user.id))


@router.patch("/videos/{media_id}", response_model=VideoOut)
def rename_video(media_id: MediaId, body: RenameIn, user: CurrentUser, services: ServicesDep) -> VideoOut:
    title = body.title.strip()
    if not title:
        raise EbbtideError("the title is empty", hint="give the video a name")
    return video_out(services, services.catalog.rename_media(media_id, user.id, title))


@router.delete("/videos/{media_id}", status_code=204)
def delete_video(media_id: MediaId, user: CurrentUser, services: ServicesDep) -> Response:
    """Catalog first (its queued jobs turn failed, so a worker skips them), then every object."""
    from ebbtide.worker import intake

    media = services.catalog.delete_media(media_id, owner_id=user.id)
    removed = services.store.delete_prefix(intake.media_prefix(media.owner_id, media.id))
    if not media.source_key.startswith(intake.media_prefix(media.owner_id, media.id)):
        services.store.delete(media.source_key)
    log.info("video deleted", extra={"media_id": media.id, "objects": removed})
    return Response(status_code=204)
