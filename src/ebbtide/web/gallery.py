"""Gallery API (`/api/gallery/…`): uploads, my videos, one video, rename, delete.

Two ways in, both probed as a video BEFORE anything is queued (a non-video gets 422 and leaves no
object behind): a direct multipart POST streamed to disk in chunks, or a signed PUT straight to
the store (in parts for big files) followed by `complete`.

Signed uploads land in an inbox key (`inbox/<user>/<media>/upload`). `complete` downloads it once,
checks the size and quota, probes that local copy and stores exactly those bytes under the media's
`source/original`, a key no signed URL names: a PUT replayed after `complete` cannot swap what the
worker transcodes. Every upload is stored under that neutral name, so a user's file name never
picks ffmpeg's demuxer. Inbox objects and multipart uploads never completed are swept after
`web.upload_ttl` (web/sweeper.py).
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from ebbtide.catalog.records import Media, User
from ebbtide.catalog.states import MediaState
from ebbtide.errors import EbbtideError, NotFound
from ebbtide.services import Services
from ebbtide.storage.base import MultipartUploads, validate_key
from ebbtide.storage.sources import is_location, parse_location
from ebbtide.web.auth import CurrentUser, ServicesDep
from ebbtide.web.signed import thumbnail_url
from ebbtide.web.uploads import ReceivedFile, receive_multipart

if TYPE_CHECKING:
    from ebbtide.media.probe import ProbeResult  # PyAV: loaded only when a probe runs

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/gallery", tags=["gallery"])

MediaId = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
_INBOX = r"^inbox/{uid}/([0-9a-f]{{32}})/upload$"


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
    # A failed attempt that will be retried leaves the video queued: say so, and why, in the gallery.
    retrying: bool = False
    attempts: int = 0
    max_attempts: int = 0
    last_error: str | None = None
    renditions: list[RenditionOut]
    thumbnail_url: str | None
    playlist_url: str | None  # also while transcoding, once a chunked video plays its first part
    playable_seconds: float = 0.0  # how much of it plays now (all of it once complete)


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


def _retry_fields(services: Services, m: Media) -> dict[str, Any]:
    if m.job_id is None or m.state not in (MediaState.QUEUED, MediaState.TRANSCODING):
        return {}
    try:
        job = services.catalog.get_job(m.job_id)
    except NotFound:
        return {}
    waiting = m.state == MediaState.QUEUED and job.attempts > 0 and job.error is not None
    return {
        "retrying": waiting,
        "attempts": job.attempts,
        "max_attempts": services.settings.queue.max_receives,
        "last_error": job.error if job.attempts > 0 else None,
    }


def video_out(services: Services, m: Media) -> VideoOut:
    ready = m.state == "complete" and m.published_prefix is not None
    playable = ready or (m.playable_seconds > 0 and m.state != "failed" and m.master_key is not None)
    return VideoOut(
        **_retry_fields(services, m),
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
        playlist_url=f"/api/stream/videos/{m.id}/master.m3u8" if playable else None,
        playable_seconds=(m.playable_seconds or m.duration or 0.0) if ready else m.playable_seconds,
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


def check_quota(services: Services, user: User, size: int) -> None:
    """OverQuota when `size` more bytes (one more video) would pass web.quota_bytes / quota_videos."""
    from ebbtide.web.uploads import OverQuota

    web = services.settings.web
    if web.quota_bytes is None and web.quota_videos is None:
        return
    used, videos = services.catalog.usage(user.id)
    if web.quota_videos is not None and videos + 1 > web.quota_videos:
        raise OverQuota(
            f"you have {videos} videos, the limit is {web.quota_videos}", hint="delete a video first"
        )
    if web.quota_bytes is not None and used + size > web.quota_bytes:
        raise OverQuota(
            f"this upload needs {size} bytes; {max(0, web.quota_bytes - used)} of your "
            f"{web.quota_bytes} are left",
            hint="delete a video first",
        )


def _check_size(services: Services, size: int) -> None:
    from ebbtide.web.uploads import TooLarge

    limit = services.settings.web.max_upload
    if size > limit:
        raise TooLarge(f"the upload is larger than the limit of {limit} bytes", hint="raise web.max_upload")


def _accept_received(services: Services, user: User, got: ReceivedFile) -> Media:
    """Probe the spooled file, then store, record and queue it. Runs in a worker thread."""
    from ebbtide.worker import intake

    check_quota(services, user, got.size)
    info = _probe_or_422(services, got.path, got.filename)
    media_id = intake.new_id()
    key = intake.source_key(user.id, media_id, intake.NEUTRAL_SOURCE)
    services.store.put_file(key, got.path, "application/octet-stream")
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
    web = services.settings.web
    limit = web.max_upload
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 1024 * 1024:
        from ebbtide.web.uploads import TooLarge

        raise TooLarge(f"the upload is larger than the limit of {limit} bytes", hint="raise web.max_upload")
    await run_in_threadpool(check_quota, services, user, 0)  # out of videos: refuse before the body
    got = await receive_multipart(
        request.headers.get("content-type", ""),
        request.stream(),
        tmp_dir(services),
        limit,
        max_fields=web.max_form_fields,
        max_field_size=web.max_form_field_size,
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
    check_quota(services, user, body.size)
    key = intake.inbox_key(user.id, intake.new_id())
    ctype = "application/octet-stream"
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


def _own_inbox_key(user: User, key: str) -> str:
    try:
        validate_key(key)
    except EbbtideError:
        raise NotFound("no such upload") from None
    if not re.match(_INBOX.format(uid=re.escape(user.id)), key):
        raise NotFound("no such upload", hint="complete the key that /uploads/sign gave you")
    return key


@router.post("/uploads/complete", status_code=201, response_model=VideoOut)
def complete_upload(body: CompleteIn, user: CurrentUser, services: ServicesDep) -> VideoOut:
    """After the signed PUT(s): assemble parts, check size and quota, probe, copy to the immutable
    source key, then queue — or delete the upload and answer 413/422."""
    from ebbtide.worker import intake

    key = _own_inbox_key(user, body.key)
    media_id = key.split("/")[2]
    try:
        services.catalog.get_media(media_id)
        raise EbbtideError("this upload was already completed", hint="each upload is completed once")
    except NotFound:
        pass
    store = services.store
    if body.upload_id:
        if not isinstance(store, MultipartUploads):
            raise NotFound("no such multipart upload")
        parts = sorted((p.part_number, p.etag.strip('"')) for p in body.parts)
        store.complete_multipart(key, body.upload_id, parts)
    if not store.exists(key):
        raise NotFound("nothing was uploaded for this key", hint="PUT the file to the signed URL first")
    with tempfile.TemporaryDirectory(dir=tmp_dir(services)) as d:
        local = Path(d) / intake.NEUTRAL_SOURCE  # neutral: the container is sniffed from the bytes
        try:
            _check_size(services, store.size(key))  # before downloading: the parts' total, not each part
            store.get_file(key, local)
            size = local.stat().st_size
            _check_size(services, size)
            check_quota(services, user, size)
            info = _probe_or_422(services, local, "the upload")
        except EbbtideError:
            store.delete(key)
            raise
        source = intake.source_key(user.id, media_id, intake.NEUTRAL_SOURCE)
        store.put_file(source, local, "application/octet-stream")  # the bytes that were probed
    store.delete(key)
    media = intake.submit_uploaded(
        services, user.id, source, _title(body.title, "untitled"), size, duration=info.duration
    )
    return video_out(services, media)


class SourceIn(BaseModel):
    location: str = Field(max_length=1100, description="s3://bucket/key of a video already in a bucket")
    title: str | None = Field(None, max_length=200)


@router.post("/sources", status_code=201, response_model=VideoOut)
async def submit_source(body: SourceIn, user: CurrentUser, services: ServicesDep) -> VideoOut:
    """Queue a video where it already is. Admins may name any bucket; others one on the allowlist."""
    from ebbtide.media.errors import MediaError
    from ebbtide.worker import intake

    loc = parse_location(body.location)
    if not user.is_admin and loc.bucket not in services.settings.sources.allow_buckets:
        raise NotFound(f"no such source {loc}", hint="an admin can allow it: sources.allow_buckets")
    try:
        media = await run_in_threadpool(intake.submit_location, services, str(loc), user.id, body.title)
    except NotFound:
        raise NotFound(f"no such source {loc}", hint="check the bucket and key") from None
    except MediaError as e:
        raise MediaError(f"{loc.name} is not a video ebbtide can use: {e.message}", hint=e.hint) from None
    return video_out(services, media)


@router.post("/uploads/abort", status_code=204)
def abort_upload(body: AbortIn, user: CurrentUser, services: ServicesDep) -> Response:
    key = _own_inbox_key(user, body.key)
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
    if is_location(media.source_key):
        pass  # a source in place is the user's own object: never deleted by ebbtide
    elif not media.source_key.startswith(intake.media_prefix(media.owner_id, media.id)):
        services.store.delete(media.source_key)
    log.info("video deleted", extra={"media_id": media.id, "objects": removed})
    return Response(status_code=204)
