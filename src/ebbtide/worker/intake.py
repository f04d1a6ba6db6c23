"""Putting work on the queue: uploads (probed first) and generic jobs.

Order matters for "nothing is lost": the source goes to the store, then the catalog rows, then the
queue message. A crash between steps leaves at worst an orphan object or a queued job without a
message; never a message pointing at nothing. The committed catalog row is the promise (the
catalog acts as the outbox): when the queue is down at send time the submit still succeeds, and
the fleet's reconciler (reconcile.resend_stranded) sends the message once `queue.resend_after`
has passed without one.
"""

from __future__ import annotations

import io
import logging
import mimetypes
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ebbtide.catalog.records import Job, Media
from ebbtide.errors import BackendUnavailable, EbbtideError, Permanent
from ebbtide.services import Services
from ebbtide.worker.messages import TRANSCODE, JobMessage, check_kind
from ebbtide.worker.status import StatusWriter, input_prefix

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def new_id() -> str:
    return uuid.uuid4().hex


def safe_filename(name: str, default: str = "source") -> str:
    """A file name that is a valid, boring object-key segment: `My clip (1).MOV` → `My_clip_1_.MOV`."""
    base = Path(name).name
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = _UNSAFE.sub("_", stem).strip("._-")[:100] or default
    ext = _UNSAFE.sub("", ext)[:10].lower()
    return f"{stem}.{ext}" if ext else stem


def media_prefix(owner_id: str, media_id: str) -> str:
    return f"users/{owner_id}/media/{media_id}/"


def source_key(owner_id: str, media_id: str, filename: str) -> str:
    return f"{media_prefix(owner_id, media_id)}source/{safe_filename(filename)}"


# Uploads from strangers are stored under this neutral name: a user-chosen extension (.m3u8,
# .ffconcat, .png) must never be what makes ffmpeg pick a demuxer.
NEUTRAL_SOURCE = "original"
INBOX = "inbox/"  # signed uploads land here; `complete` copies them to source/ (immutable)


def inbox_key(owner_id: str, media_id: str) -> str:
    """Where a signed PUT (or multipart upload) writes; never read by a worker."""
    return f"{INBOX}{owner_id}/{media_id}/upload"


def hls_root(owner_id: str, media_id: str) -> str:
    return f"{media_prefix(owner_id, media_id)}hls/"


def submit_file(services: Services, path: Path | str, owner_id: str, title: str | None = None) -> Media:
    """Probe a local file, store it, record it and queue its transcode. A non-video raises
    MediaError before anything is stored or queued."""
    from ebbtide.media.probe import probe  # PyAV: imported only when needed

    path = Path(path)
    info = probe(path, services.settings.media.limits)
    media_id = new_id()
    key = source_key(owner_id, media_id, path.name)
    services.store.put_file(key, path, mimetypes.guess_type(path.name)[0] or "application/octet-stream")
    services.catalog.create_media(
        owner_id,
        title or path.stem,
        key,
        path.stat().st_size,
        duration=info.duration,
        width=info.width,
        height=info.height,
        media_id=media_id,
    )
    return _queue_transcode(services, owner_id, media_id, key, info.duration)


def submit_location(services: Services, location: str, owner_id: str, title: str | None = None) -> Media:
    """A source already in a bucket (`s3://bucket/key`), queued where it is: no copy is made.

    Same checks as an upload (size limit, probe) before anything is recorded; the probe reads
    through ranged GETs, only the bytes the demuxer asks for (typically the moov box and a frame).
    """
    from ebbtide.media.probe import probe_stream
    from ebbtide.storage.sources import open_sources, parse_location

    loc = parse_location(location)
    reader = open_sources(services.settings.sources).reader(loc)
    limit = services.settings.web.max_upload
    if reader.size > limit:
        raise Permanent(f"{loc} is {reader.size} bytes, over the {limit}-byte limit", hint="web.max_upload")
    with io.BufferedReader(reader, buffer_size=64 * 1024) as stream:
        info = probe_stream(stream, loc.name, reader.size)
    log.info("source probed in place", extra={"location": str(loc), "bytes_read": reader.bytes_read})
    media_id = new_id()
    services.catalog.create_media(
        owner_id, (title or Path(loc.key).stem)[:200] or "untitled", str(loc), reader.size,
        duration=info.duration, width=info.width, height=info.height, media_id=media_id,
    )  # fmt: skip
    return _queue_transcode(services, owner_id, media_id, str(loc), info.duration)


def submit_uploaded(
    services: Services,
    owner_id: str,
    source_key: str,
    title: str,
    size: int,
    duration: float | None = None,
) -> Media:
    """An upload already in the store (the web app's signed PUT): record it and queue its transcode.
    Nothing is probed here; the worker finds out, and a bad file ends failed with a reason."""
    if not services.store.exists(source_key):
        raise EbbtideError(
            f"the upload {source_key} is not in the store", hint="finish the upload before submitting it"
        )
    m = re.match(r"^users/[^/]+/media/([^/]+)/source/", source_key)
    media_id = m.group(1) if m else new_id()
    services.catalog.create_media(owner_id, title, source_key, size, duration=duration, media_id=media_id)
    return _queue_transcode(services, owner_id, media_id, source_key, duration)


def _queue_transcode(
    services: Services, owner_id: str, media_id: str, key: str, duration: float | None
) -> Media:
    job = services.catalog.create_job(
        TRANSCODE, {"source_key": key}, owner_id=owner_id, media_id=media_id, work_seconds=duration
    )
    _send(services, JobMessage(job.id, TRANSCODE, media_id))
    log.info("media queued", extra={"media_id": media_id, "job_id": job.id, "owner_id": owner_id})
    return services.catalog.get_media(media_id)


def _send(services: Services, message: JobMessage) -> None:
    try:
        services.queue.send(message.body(), dedup_id=message.job_id)
    except BackendUnavailable as e:  # the row is committed: the reconciler sends it later
        log.warning(
            "queue unavailable at submit; the job is queued in the catalog and will be re-sent",
            extra={"job_id": message.job_id, "error": e.message},
        )


def submit_job(
    services: Services,
    kind: str,
    payload: Mapping[str, Any],
    owner_id: str | None = None,
    inputs: Mapping[str, Path] | None = None,
    work_seconds: float | None = None,
) -> Job:
    """A generic job (`command`, `python:module:function`); `inputs` go to `jobs/<id>/input/<name>`."""
    check_kind(kind)
    if kind == TRANSCODE:
        raise EbbtideError("transcode jobs are submitted with submit_file or submit_uploaded")
    job_id = new_id()
    for name, local in (inputs or {}).items():
        p = Path(local)
        if not p.is_file():
            raise EbbtideError(f"input {name!r}: {p} is not a file", hint="pass existing files as inputs")
        services.store.put_file(f"{input_prefix(job_id)}{safe_filename(name, 'input')}", p)
    job = services.catalog.create_job(
        kind, dict(payload), owner_id=owner_id, work_seconds=work_seconds, job_id=job_id
    )
    StatusWriter(services.store, services.clock, job.id, kind).queued()
    _send(services, JobMessage(job.id, kind))
    log.info("job queued", extra={"job_id": job.id, "kind": kind})
    return job
