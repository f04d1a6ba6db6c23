"""The viewers' hot routes without the framework: signed `GET/HEAD /files/…` and signed variant
playlists already rendered in this window.

Raw ASGI, added inside `Guards`, `DefaultHeaders` and CORS, so the Host and control-character
checks, the security headers and CORS still apply. It answers only what it can answer with
certainty and the same way the routes would (same checks, same headers); everything else goes to
the routes untouched, which answer as before: a missing, bad or expired signature, an unexpected
query parameter, a `Range`, a missing file, a file over `MAX_INLINE`, a playlist not in the cache,
a playlist request carrying credentials. It never answers an error itself.

What it saves per request: routing and dependency injection, a thread-pool hop for the sync route,
one more per 1 MiB read, Starlette's response machinery. A file already in the page cache is read
in the event loop (`preadv` with `RWF_NOWAIT`, which never waits on the disk); a cold one is read
on a thread. The owner check (a caller signed in as A gets 404 for B's objects) needs the caller:
credentials seen in the last `CALLER_TTL` seconds are remembered instead of asked of the catalog
per segment. A stale entry can only refuse more (the signature alone already grants the object).
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
import threading
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import parse_qsl, quote

import anyio.to_thread
from starlette.requests import Request, cookie_parser

from ebbtide.catalog.records import User
from ebbtide.errors import EbbtideError
from ebbtide.services import Services
from ebbtide.web.auth import SESSION_COOKIE
from ebbtide.web.conditional import not_modified
from ebbtide.web.files import caller, file_headers, may_read, owner_of
from ebbtide.web.playcache import PlaylistCache
from ebbtide.web.playlists import content_type_for
from ebbtide.web.stream import PLAYLIST, cache_key, verify_playlist, window_expiry

Scope = dict[str, Any]
MAX_INLINE = 8 * 1024 * 1024  # bigger files (sources, downloads) take the route's chunked response
CALLER_TTL = 10.0
MAX_CALLERS = 10_000
MAX_PATHS = 50_000
_VARIANT = re.compile(r"^/api/stream/videos/([A-Za-z0-9_-]{1,64})/hls/(.+)$")
_WANTED = frozenset({b"range", b"authorization", b"cookie", b"if-none-match", b"if-modified-since"})
Caller = tuple[str, bool] | None  # (user id, is admin), or nobody


class _Callers:
    """Recently seen credentials → who they named (bounded; entries live `ttl` seconds)."""

    def __init__(self, ttl: float = CALLER_TTL, max_entries: int = MAX_CALLERS) -> None:
        self.ttl, self.max_entries = ttl, max_entries
        self._items: OrderedDict[str, tuple[Caller, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, credential: str, now: float) -> tuple[bool, Caller]:
        with self._lock:
            hit = self._items.get(credential)
        if hit is None or now - hit[1] >= self.ttl:
            return False, None
        return True, hit[0]

    def put(self, credential: str, who: Caller, now: float) -> None:
        with self._lock:
            self._items[credential] = (who, now)
            self._items.move_to_end(credential)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)


def _read_cached(path: str, size: int) -> bytes | None:
    """The whole file if the page cache holds all of it, without ever waiting on the disk."""
    flag = getattr(os, "RWF_NOWAIT", None)
    if flag is None:
        return None
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        buf = bytearray(size)
        try:
            n = os.preadv(fd, [buf], 0, flag)
        except OSError:  # EAGAIN: not cached; EOPNOTSUPP: a filesystem without RWF_NOWAIT
            return None
        return bytes(buf) if n == size else None
    finally:
        os.close(fd)


def _read_all(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class FastPath:
    def __init__(
        self, app: Any, services: Services, parts: frozenset[str], playlists: PlaylistCache | None
    ) -> None:
        self.app = app
        self.services = services
        store = services.store
        serves_files = all(hasattr(store, m) for m in ("path_for", "verify")) and bool(
            parts & {"gallery", "stream"}
        )
        self.store: Any = store if serves_files else None
        self.playlists = playlists if "stream" in parts else None
        self.accel = services.settings.web.accel_redirect
        self.callers = _Callers()
        self._paths: dict[str, str] = {}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path: str = scope["path"]
            if self.store is not None and path.startswith("/files/"):
                answered = await self._file(scope, path[len("/files/") :], send)
            elif self.playlists is not None and scope["method"] == "GET" and path.startswith("/api/stream/"):
                answered = await self._playlist(scope, path, send)
            else:
                answered = False
            if answered:
                return
        await self.app(scope, receive, send)

    # -- files -----------------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        """`store.path_for` (key rules, no escape from the root), remembered: resolving a path
        walks every folder with lstat. The store never makes symlinks, so a key's file stays put."""
        path = self._paths.get(key)
        if path is None:
            path = str(self.store.path_for(key))
            if len(self._paths) >= MAX_PATHS:
                self._paths.clear()
            self._paths[key] = path
        return path

    async def _who(self, scope: Scope, h: dict[bytes, bytes]) -> Caller:
        auth = h.get(b"authorization")
        if auth is not None:
            credential = "a:" + auth.decode("latin-1")
        else:
            session = cookie_parser(h.get(b"cookie", b"").decode("latin-1")).get(SESSION_COOKIE)
            if not session:
                return None
            credential = "s:" + session
        now = time.monotonic()
        known, who = self.callers.get(credential, now)
        if known:
            return who
        user: User | None = await anyio.to_thread.run_sync(caller, Request(scope), self.services)
        who = (user.id, user.is_admin) if user is not None else None
        self.callers.put(credential, who, now)
        return who

    async def _file(self, scope: Scope, key: str, send: Any) -> bool:
        h = {k: v for k, v in scope["headers"] if k in _WANTED}
        if b"range" in h:
            return False
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        try:
            self.store.verify("GET", key, query)
            owner = owner_of(key)
            if owner is not None and (b"authorization" in h or b"cookie" in h):
                who = await self._who(scope, h)
                if who is not None and not may_read(who[0], who[1], owner):
                    return False
            path = self._path(key)
            st = os.stat(path)
        except (EbbtideError, OSError, ValueError):
            return False  # the route gives the refusal its proper answer
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_INLINE:
            return False
        headers = file_headers(key, st, int(query["expires"]), query.get("filename"), time.time())
        inm, ims = h.get(b"if-none-match"), h.get(b"if-modified-since")
        if (inm is not None or ims is not None) and not_modified(
            inm.decode("latin-1") if inm is not None else None,
            ims.decode("latin-1") if ims is not None else None,
            headers["ETag"],
            st.st_mtime,
        ):
            await send({"type": "http.response.start", "status": 304, "headers": _raw(headers)})
            await send({"type": "http.response.body", "body": b""})
            return True
        headers["Content-Type"] = content_type_for(key)
        if self.accel:
            headers["X-Accel-Redirect"] = self.accel + quote(key, safe="/")
            headers["Content-Length"] = "0"
            body = b""
        elif scope["method"] == "HEAD":
            headers["Content-Length"] = str(st.st_size)
            body = b""
        else:
            data = _read_cached(path, st.st_size)
            if data is None:
                data = await anyio.to_thread.run_sync(_read_all, path)
            headers["Content-Length"] = str(len(data))
            body = data
        await send({"type": "http.response.start", "status": 200, "headers": _raw(headers)})
        await send({"type": "http.response.body", "body": body})
        return True

    # -- playlists -------------------------------------------------------------------------------

    async def _playlist(self, scope: Scope, path: str, send: Any) -> bool:
        m = _VARIANT.match(path)
        if m is None or self.playlists is None:
            return False
        media_id, rel = m.group(1), posixpath.normpath(m.group(2))
        if not rel.endswith(".m3u8") or rel.startswith("..") or rel.startswith("/"):
            return False
        h = {k: v for k, v in scope["headers"] if k in _WANTED}
        if b"authorization" in h or SESSION_COOKIE.encode() in h.get(b"cookie", b""):
            return False  # the route decides between the owner's view and the signed one
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        if "sig" not in query:
            return False
        try:
            verify_playlist(self.services, media_id, rel, query)
        except (EbbtideError, ValueError):
            return False
        hit = self.playlists.get(cache_key(media_id, rel, True, window_expiry(self.services)))
        if hit is None:
            return False  # the route renders it (and fills the cache)
        headers = {
            "Content-Type": PLAYLIST,
            "Cache-Control": hit.cache_control,
            "Content-Length": str(len(hit.body)),
        }
        await send({"type": "http.response.start", "status": 200, "headers": _raw(headers)})
        await send({"type": "http.response.body", "body": hit.body})
        return True
