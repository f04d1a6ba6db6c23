"""Streaming request bodies to temp files, so a multi-GB upload never sits in the server's memory.

`receive_multipart` feeds the raw request stream to python-multipart's push parser chunk by chunk
and writes the file part to disk as it arrives; `receive_raw` does the same for a plain body (signed
PUTs). Both stop at `max_bytes` with a 413 instead of filling the disk.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from ebbtide.errors import EbbtideError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_HEADER = 8 * 1024  # bytes of one part header (name + value)
_MAX_PART_HEADERS = 32


class UploadError(EbbtideError):
    """A malformed upload body (400)."""


class TooLarge(EbbtideError):
    """The body is above web.max_upload (413)."""


class OverQuota(EbbtideError):
    """The upload would take the user past web.quota_bytes or web.quota_videos (413)."""


class BodyTimeout(EbbtideError):
    """The request body stalled longer than web.body_timeout (408)."""


def safe_filename(name: str | None, default: str = "upload.bin") -> str:
    """A filename that is safe as the last segment of a store key, keeping the extension readable."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).strip("._-")[:120]
    return base or default


@dataclass
class ReceivedFile:
    path: Path
    filename: str
    size: int
    content_type: str | None
    md5: str
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


class _Collector:
    """python-multipart callbacks: the first file part goes to disk, small text fields to a dict."""

    def __init__(
        self, tmp_dir: Path, max_bytes: int, max_fields: int = 16, max_field_size: int = 64 * 1024
    ) -> None:
        self.tmp_dir = tmp_dir
        self.max_bytes = max_bytes
        self.max_fields = max_fields
        self.max_field_size = max_field_size
        self._parts = 0
        self.fields: dict[str, str] = {}
        self.file: ReceivedFile | None = None
        self._fh: IO[bytes] | None = None
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._headers: dict[str, str] = {}
        self._hname = b""
        self._hvalue = b""
        self._name = ""
        self._is_file = False
        self._buf = bytearray()
        self._writing = False

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self._part_begin,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
        }

    def _part_begin(self) -> None:
        self._headers, self._buf, self._writing = {}, bytearray(), False
        self._parts += 1
        # the file part plus max_fields text fields; every other part is refused, not kept
        if self._parts > self.max_fields + 1:
            raise UploadError(
                f"the form has more than {self.max_fields} fields",
                hint="send the file and a title; raise web.max_form_fields if you need more",
            )

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]
        self._check_header()

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]
        self._check_header()

    def _check_header(self) -> None:
        if len(self._hname) + len(self._hvalue) > _MAX_HEADER or len(self._headers) >= _MAX_PART_HEADERS:
            raise UploadError("a form part has too many or too long headers")

    def _header_end(self) -> None:
        self._headers[self._hname.decode("latin-1").lower()] = self._hvalue.decode("latin-1")
        self._hname, self._hvalue = b"", b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get("content-disposition", ""))
        self._name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        self._is_file = filename is not None
        if self._is_file and self.file is None:
            fd, tmp = tempfile.mkstemp(prefix="upload-", dir=self.tmp_dir)
            self._fh = os.fdopen(fd, "wb")
            self._writing = True
            self.file = ReceivedFile(
                path=Path(tmp),
                filename=safe_filename((filename or b"").decode("utf-8", "replace")),
                size=0,
                content_type=self._headers.get("content-type"),
                md5="",
            )

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._writing and self._fh is not None and self.file is not None:
            self.file.size += len(chunk)
            if self.file.size > self.max_bytes:
                raise TooLarge(
                    f"the upload is larger than the limit of {self.max_bytes} bytes",
                    hint="raise web.max_upload or upload a smaller file",
                )
            self._md5.update(chunk)
            self._fh.write(chunk)
        elif not self._is_file:
            self._buf += chunk
            if len(self._buf) > self.max_field_size:
                raise UploadError(
                    f"form field {self._name[:40]!r} is longer than {self.max_field_size} bytes",
                    hint="raise web.max_form_field_size",
                )

    def _part_end(self) -> None:
        if self._writing and self._fh is not None and self.file is not None:
            self._fh.close()
            self._fh = None
            self.file.md5 = self._md5.hexdigest()
            self._writing = False
        elif not self._is_file and self._name:
            self.fields[self._name] = self._buf.decode("utf-8", "replace")

    def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self.file is not None:
            self.file.discard()


async def receive_multipart(
    content_type: str,
    stream: AsyncIterator[bytes],
    tmp_dir: Path,
    max_bytes: int,
    max_fields: int = 16,
    max_field_size: int = 64 * 1024,
) -> ReceivedFile:
    """Parse a multipart/form-data body as it streams in; returns the (first) file part on disk."""
    ctype, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise UploadError(
            "expected a multipart/form-data body with a file field",
            hint="send the video as form field 'file' (curl -F file=@clip.mp4)",
        )
    tmp_dir.mkdir(parents=True, exist_ok=True)
    collector = _Collector(tmp_dir, max_bytes, max_fields, max_field_size)
    parser = MultipartParser(boundary, collector.callbacks())
    try:
        async for chunk in stream:
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as e:
        collector.abort()
        raise UploadError(f"the multipart body is malformed: {e}") from None
    except BaseException:
        collector.abort()
        raise
    if collector.file is None or collector._writing:
        collector.abort()
        raise UploadError("the form has no complete file field", hint="send the video as form field 'file'")
    collector.file.fields = collector.fields
    return collector.file


async def receive_raw(stream: AsyncIterator[bytes], dest_dir: Path, max_bytes: int) -> ReceivedFile:
    """Write a plain request body to a temp file in `dest_dir` (same folder → atomic rename later)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".put-", dir=dest_dir)
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    try:
        with os.fdopen(fd, "wb") as fh:
            async for chunk in stream:
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(f"the body is larger than the limit of {max_bytes} bytes")
                md5.update(chunk)
                fh.write(chunk)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return ReceivedFile(path=Path(tmp), filename="", size=size, content_type=None, md5=md5.hexdigest())
