"""`/files/{key}`: the local file store's signed URLs, served like S3 would serve them.

GET/HEAD with Range (206) and caching headers; PUT (a whole object or a multipart part) streamed
to disk and answered with the part's ETag. The signature is the capability; on top, a caller who
identifies as another user gets 404 for keys under someone else's `users/<id>/` folder.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from ebbtide.catalog.records import User
from ebbtide.errors import IllegalTransition, NotFound
from ebbtide.services import Services
from ebbtide.storage.file import UPLOADS
from ebbtide.storage.signing import content_disposition
from ebbtide.web.auth import SESSION_COOKIE, ServicesDep, bearer_user, session_user
from ebbtide.web.conditional import etag_for, last_modified, not_modified, signed_cache_control
from ebbtide.web.gallery import tmp_dir
from ebbtide.web.playlists import content_type_for
from ebbtide.web.uploads import TooLarge, receive_raw
from ebbtide.worker.intake import INBOX

router = APIRouter(tags=["files"])


class BigChunkFileResponse(FileResponse):
    """1 MiB reads instead of 64 KiB: a 2 MB segment in 2 sends, not 35 (+35 to 40 % req/s measured)."""

    chunk_size = 1024 * 1024


def _file_store(services: Services) -> Any:
    store = services.store
    if not all(hasattr(store, m) for m in ("path_for", "verify", "accept_put")):
        raise NotFound("this deployment serves files from its object store, not from here")
    return store


def owner_of(key: str) -> str | None:
    """The user id whose folder holds `key` (`users/<id>/…`, `inbox/<id>/…`), or None."""
    if not key.startswith(("users/", INBOX)):
        return None
    return key.split("/", 2)[1] if key.count("/") >= 2 else ""


def caller(request: Request, services: Services) -> User | None:
    """Who the request says it is (bearer token or session), or None; never raises."""
    try:
        return (
            bearer_user(request, services)
            if request.headers.get("authorization")
            else session_user(services, request.cookies.get(SESSION_COOKIE))
        )
    except Exception:  # an unverifiable credential does not weaken or replace the signature
        return None


def may_read(user_id: str | None, is_admin: bool, owner: str | None) -> bool:
    """Someone signed in as user A asking for user B's object gets 404, as for B's video."""
    return owner is None or user_id is None or user_id == owner or is_admin


def _check_owner(request: Request, services: Services, key: str) -> None:
    owner = owner_of(key)
    user = caller(request, services) if owner is not None else None
    if user is not None and not may_read(user.id, user.is_admin, owner):
        raise NotFound(f"no object {key!r}")


def file_headers(
    key: str, st: os.stat_result, expires: int, filename: str | None, now: float
) -> dict[str, str]:
    """The headers of a verified signed GET (pure): validators and how long caches may keep it."""
    headers = {
        "Cache-Control": signed_cache_control(key, expires - now),
        "Accept-Ranges": "bytes",
        "ETag": etag_for(st),
        "Last-Modified": last_modified(st),
    }
    if filename:
        headers["Content-Disposition"] = content_disposition(filename)
    return headers


@router.head("/files/{key:path}", include_in_schema=False)
@router.get(
    "/files/{key:path}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, 206: {"description": "a byte range"}},
)
def get_file(key: str, request: Request, services: ServicesDep) -> Response:
    store = _file_store(services)
    store.verify("GET", key, dict(request.query_params))
    _check_owner(request, services, key)
    path = store.path_for(key)
    try:
        st = path.stat()
    except OSError:
        st = None
    if st is None or not path.is_file():
        raise NotFound(f"no object {key!r}")
    q = request.query_params
    headers = file_headers(key, st, int(q.get("expires", "0")), q.get("filename"), time.time())
    etag = headers["ETag"]
    h = request.headers
    if not_modified(h.get("if-none-match"), h.get("if-modified-since"), etag, st.st_mtime):
        return Response(status_code=304, headers=headers)
    accel = services.settings.web.accel_redirect
    if accel:
        # nginx serves the bytes (sendfile, Range, HEAD) from its internal location; we only
        # checked the signature and the owner, and chose the headers it passes on.
        headers["X-Accel-Redirect"] = accel + quote(key, safe="/")
        return Response(status_code=200, media_type=content_type_for(key), headers=headers)
    return BigChunkFileResponse(path, media_type=content_type_for(key), headers=headers, stat_result=st)


def _put_limit(services: Services, store: Any, key: str) -> int:
    """What this PUT may still add: a multipart part gets what the upload's other parts left of
    web.max_upload; an inbox key whose upload was completed takes nothing more."""
    limit: int = services.settings.web.max_upload
    parts = key.split("/")
    if key.startswith(UPLOADS + "/") and len(parts) == 3 and parts[2].isdigit():
        others = store.upload_bytes(parts[1])
        with contextlib.suppress(OSError):
            others -= (store.root / UPLOADS / parts[1] / str(int(parts[2]))).stat().st_size  # a re-sent part
        if others >= limit:
            raise TooLarge(f"the upload's parts already add up to the limit of {limit} bytes")
        return limit - others
    if key.startswith(INBOX) and len(parts) == 4:
        try:
            services.catalog.get_media(parts[2])
        except NotFound:
            return limit
        raise IllegalTransition("this upload was completed; its object can no longer change")
    return limit


@router.put("/files/{key:path}", responses={200: {"description": "stored; ETag header holds its md5"}})
async def put_file(key: str, request: Request, services: ServicesDep) -> Response:
    store = _file_store(services)
    store.verify("PUT", key, dict(request.query_params))
    _check_owner(request, services, key)
    limit = await run_in_threadpool(_put_limit, services, store, key)
    got = await receive_raw(request.stream(), tmp_dir(services), limit)
    try:

        def _store() -> str:
            with open(got.path, "rb") as fh:
                etag: str = store.accept_put(key, fh)
                return etag

        etag = await run_in_threadpool(_store)
    finally:
        got.discard()
    return Response(status_code=200, headers={"ETag": f'"{etag}"', "Access-Control-Expose-Headers": "ETag"})
