"""Key rules shared by the store backends, beyond `base.validate_key`."""

from __future__ import annotations

from ebbtide.errors import EbbtideError, InvalidKey
from ebbtide.storage.base import validate_key


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
