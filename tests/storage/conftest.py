"""Store fixtures: the same tests run on a local folder and on S3 (moto server over HTTP).

`file_server` is a small stdlib HTTP server that serves a FileStore's signed URLs exactly as the
web app must (verify, then `path_for` / `accept_put`), so the file store's URLs are exercised
over real HTTP too; it is also the reference the web engineer can compare against.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from ebbtide.clock import VirtualClock
from ebbtide.config.sections import StoreConfig
from ebbtide.errors import InvalidKey, NotFound
from ebbtide.storage import FileStore, S3Store, open_store
from ebbtide.storage.signing import SignatureError, content_disposition

SECRET = "test-secret-do-not-use"
MiB = 1024 * 1024


class _Limited:
    """The request body: exactly Content-Length bytes, read in bounded chunks."""

    def __init__(self, raw: BinaryIO, length: int) -> None:
        self.raw, self.left = raw, length

    def read(self, size: int = -1) -> bytes:
        n = self.left if size < 0 else min(size, self.left)
        data = self.raw.read(n) if n else b""
        self.left -= len(data)
        return data


def _handler(holder: dict[str, FileStore]) -> type[BaseHTTPRequestHandler]:
    """The handler looks the store up late: the store needs the server's port for its URLs."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            pass

        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _checked(self, method: str) -> tuple[str, dict[str, str]] | None:
            url = urlsplit(self.path)
            if not url.path.startswith("/files/"):
                self._reply(404)
                return None
            key = unquote(url.path[len("/files/") :])
            query = dict(parse_qsl(url.query))
            store = holder["store"]
            try:
                store.verify(method, key, query)
            except SignatureError as e:
                self._reply(403, e.reason.encode())
                return None
            return key, query

        def do_GET(self) -> None:
            checked = self._checked("GET")
            if checked is None:
                return
            key, query = checked
            try:
                path = holder["store"].path_for(key)
                data = path.read_bytes()
            except (InvalidKey, FileNotFoundError, IsADirectoryError):
                self._reply(404)
                return
            headers = (
                {"Content-Disposition": content_disposition(query["filename"])} if "filename" in query else {}
            )
            self._reply(200, data, headers)

        def do_PUT(self) -> None:
            checked = self._checked("PUT")
            if checked is None:
                return
            body = _Limited(self.rfile, int(self.headers.get("Content-Length", "0")))
            try:
                etag = holder["store"].accept_put(checked[0], body)  # type: ignore[arg-type]
            except (InvalidKey, NotFound) as e:
                self._reply(400, str(e).encode())
                return
            self._reply(200, b"", {"ETag": f'"{etag}"'})

    return Handler


@pytest.fixture()
def clock() -> VirtualClock:
    import time

    return VirtualClock(start=time.time())


@pytest.fixture()
def file_store(tmp_path: Path, clock: VirtualClock) -> Iterator[FileStore]:
    """A FileStore whose signed URLs point at a live HTTP server serving it."""
    holder: dict[str, FileStore] = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(holder))
    base = f"http://127.0.0.1:{server.server_address[1]}"
    cfg = StoreConfig(url=f"file://{tmp_path / 'store'}", secret=SECRET)
    store = open_store(cfg, url_base=base, clock=clock)
    assert isinstance(store, FileStore)
    holder["store"] = store
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield store
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture()
def s3_store(moto_endpoint: str) -> S3Store:
    """A fresh bucket per test, with a key prefix, and small multipart sizes so they are exercised."""
    bucket = f"ebbtide-test-{uuid.uuid4().hex[:12]}"
    cfg = StoreConfig(
        url=f"s3://{bucket}/tenant/a",
        endpoint_url=moto_endpoint,
        region="us-east-1",
        multipart_threshold=5 * MiB,
        multipart_chunk=5 * MiB,
    )
    store = open_store(cfg)
    assert isinstance(store, S3Store)
    return store


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest) -> FileStore | S3Store:
    return request.getfixturevalue(f"{request.param}_store")  # type: ignore[no-any-return]
