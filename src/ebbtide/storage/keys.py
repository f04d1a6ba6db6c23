"""Key rules shared by the store backends, beyond `base.validate_key`."""

from __future__ import annotations

from pathlib import Path

from ebbtide.errors import EbbtideError, InvalidKey, NotFound
from ebbtide.storage.base import validate_key, validate_prefix


class UploadError(EbbtideError):
    """A multipart upload cannot be completed as asked (missing part, wrong ETag, bad order)."""


def object_key(key: str) -> str:
    """A key that names an object: `validate_key` plus no trailing '/' (that names a folder)."""
    validate_key(key)
    if key.endswith("/"):
        raise InvalidKey(f"object key {key!r} ends with '/'", hint="name a file, not a folder")
    return key


def relative_key(prefix: str, key: str) -> str:
    """`key` relative to the folder `prefix` (as `put_folder` wrote it)."""
    head = prefix.strip("/")
    return key[len(head) + 1 :] if head else key


class StoreUnavailable(EbbtideError):
    """The S3 endpoint refused or could not be reached."""


def folder_files(prefix: str, folder: Path) -> list[tuple[str, Path]]:
    """(key, file) for every file below `folder`, keyed under `prefix`, in a stable order."""
    validate_prefix(prefix)
    folder = Path(folder)
    if not folder.is_dir():
        raise NotFound(f"{folder} is not a folder", hint="put_folder uploads a local folder")
    return [
        (object_key(f"{prefix.strip('/')}/{path.relative_to(folder).as_posix()}".lstrip("/")), path)
        for path in sorted(p for p in folder.rglob("*") if p.is_file())
    ]
