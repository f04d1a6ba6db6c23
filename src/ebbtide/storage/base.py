"""The `ObjectStore` port: files and folders under validated keys, and signed URLs."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from ebbtide.errors import InvalidKey

_KEY_CHARS = re.compile(r"^[A-Za-z0-9._\-/=+@ ]+$")


def validate_key(key: str) -> str:
    """Reject keys that could escape a prefix or a folder: `..`, absolute paths, odd characters."""
    if not key or len(key) > 1024:
        raise InvalidKey(f"object key must be 1-1024 characters, got {len(key)}")
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise InvalidKey(f"object key {key!r} must be relative and use '/' separators")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts[:-1]) or parts[-1] in (".", ".."):
        raise InvalidKey(f"object key {key!r} has an empty, '.' or '..' segment")
    if not _KEY_CHARS.match(key):
        raise InvalidKey(f"object key {key!r} has characters outside A-Z a-z 0-9 . _ - / = + @ space")
    return key


def validate_prefix(prefix: str) -> str:
    """A prefix is a key that may end with '/'; the empty prefix means everything."""
    if prefix == "":
        return prefix
    validate_key(prefix.rstrip("/") or "x")
    return prefix


def join_key(*parts: str) -> str:
    return validate_key(posixpath.join(*[p.strip("/") for p in parts if p]))


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


@runtime_checkable
class ObjectStore(Protocol):
    def put_file(self, key: str, path: Path, content_type: str | None = None) -> None: ...

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None: ...

    def put_stream(self, key: str, stream: BinaryIO, content_type: str | None = None) -> int:
        """Copy a stream in bounded memory; returns bytes written."""
        ...

    def get_file(self, key: str, path: Path) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def put_folder(self, prefix: str, folder: Path) -> list[str]: ...

    def get_folder(self, prefix: str, folder: Path) -> list[str]: ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int: ...

    def list(self, prefix: str = "") -> list[ObjectInfo]: ...

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def signed_get_url(self, key: str, expires_in: float, filename: str | None = None) -> str: ...

    def signed_put_url(self, key: str, expires_in: float, content_type: str | None = None) -> str: ...


@runtime_checkable
class MultipartUploads(Protocol):
    """Browser uploads of big files in parts, each PUT straight to a signed URL.

    The caller starts an upload, hands the browser one signed URL per part, collects each part's
    ETag from the PUT responses and completes (or aborts) with them. Both backends implement it.
    """

    def start_multipart(self, key: str, content_type: str | None = None) -> str:
        """Returns the upload id."""
        ...

    def signed_part_url(self, key: str, upload_id: str, part_number: int, expires_in: float) -> str: ...

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        """`parts` are (part number, ETag) in ascending part order."""
        ...

    def abort_multipart(self, key: str, upload_id: str) -> None: ...


@runtime_checkable
class UploadSweeper(Protocol):
    """Removes what abandoned browser uploads leave: never-completed multipart uploads and objects
    under an inbox prefix, both older than a cut-off (epoch seconds). Both backends implement it."""

    def sweep_uploads(self, prefix: str, older_than: float) -> int:
        """Returns how many uploads and objects were removed."""
        ...
