"""A tiny HTTP file server with Range requests that counts the bytes it sends, per path.

It stands in for a presigned S3 GET in the bench and tests, to measure what a chunk's ffmpeg
actually reads (ffmpeg's HTTP reader is the same code against S3: range requests and seeks).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
PIECE = 256 * 1024  # an open-ended range is answered in pieces of this size (the reader asks on)


class CountingServer:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.sent: Counter[str] = Counter()
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                name = self.path.split("?", 1)[0].lstrip("/")
                path = outer.folder / name
                if "/" in name or not path.is_file():
                    self.send_error(404)
                    return
                size = path.stat().st_size
                start, end = 0, size - 1
                m = _RANGE.fullmatch(self.headers.get("Range", ""))
                if m and (m.group(1) or m.group(2)):
                    if m.group(1):
                        start = int(m.group(1))
                        end = min(size - 1, int(m.group(2))) if m.group(2) else size - 1
                    else:
                        start = max(0, size - int(m.group(2)))
                    # Open-ended reads come back in pieces, as a real client's would when it
                    # seeks away: bytes it never consumes are not counted as read.
                    end = min(end, start + PIECE - 1)
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                else:
                    end = min(end, PIECE - 1)
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes 0-{end}/{size}")
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(end - start + 1))
                self.end_headers()
                with open(path, "rb") as fh:
                    fh.seek(start)
                    left = end - start + 1
                    try:
                        while left > 0:
                            data = fh.read(min(left, 64 * 1024))
                            if not data:
                                break
                            self.wfile.write(data)
                            left -= len(data)
                            with outer._lock:
                                outer.sent[name] += len(data)
                    except (BrokenPipeError, ConnectionResetError):  # the reader seeked away
                        pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{name}"

    def reset(self) -> None:
        with self._lock:
            self.sent.clear()

    def __enter__(self) -> CountingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
