"""A local folder as object store, with HMAC-signed URLs served by the web app.

Every write goes to a temp file in the destination folder and is renamed into place, so a reader
never sees half an object and a crash leaves at most a temp file (never listed). Multipart
uploads stage their parts under the reserved `.uploads/<upload_id>/` folder; see `signing` for
the URL format the web app serves.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ebbtide.clock import SYSTEM_CLOCK, Clock
from ebbtide.errors import ConfigError, InvalidKey, NotFound, disk_full
from ebbtide.fsperm import FILE_MODE, private_dir
from ebbtide.storage import signing
from ebbtide.storage.base import ObjectInfo, validate_prefix
from ebbtide.storage.keys import UploadError, folder_files, object_key, relative_key

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
UPLOADS = ".uploads"
TEMP_PREFIX = ".ebbtide-tmp-"
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_META = "upload.json"
MAX_PARTS = 10_000


class FileStore:
    def __init__(
        self,
        root: Path,
        secret: str,
        url_base: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        sign_window: float = 0.0,
    ):
        if not secret:
            raise ConfigError("store.secret is empty", hint="the file store signs its URLs; set store.secret")
        self.root = private_dir(Path(root).expanduser().resolve())
        self.secret = secret
        self.url_base = url_base.rstrip("/") if url_base else None
        self.clock = clock
        self.sign_window = sign_window

    # -- keys and paths --------------------------------------------------------------------------

    def path_for(self, key: str) -> Path:
        """The file behind a public key; the web app serves it. Reserved keys are refused."""
        key = object_key(key)
        first = key.split("/", 1)[0]
        if first == UPLOADS or key.rsplit("/", 1)[-1].startswith(TEMP_PREFIX):
            raise InvalidKey(f"object key {key!r} is reserved by the file store")
        return self._resolve(key)

    def _resolve(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise InvalidKey(f"object key {key!r} resolves outside the store")
        return path

    def _existing(self, key: str) -> Path:
        path = self.path_for(key)
        if not path.is_file():
            raise NotFound(f"no object {key!r} in the file store at {self.root}")
        return path

    # -- writes ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _atomic(self, dest: Path) -> Iterator[BinaryIO]:
        # S3 lets "a" and "a/b" both exist; a folder cannot, so say so instead of an OSError.
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise InvalidKey(
                f"{dest} cannot be written: a file stands where a folder is needed",
                hint="in the file store a key cannot also be the folder of another key",
            ) from None
        if dest.is_dir():
            raise InvalidKey(
                f"{dest} is a folder of other keys", hint="in the file store a key cannot also be a folder"
            )
        tmp = dest.parent / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
        try:
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE), "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, dest)
        except OSError as e:
            full = disk_full(e)
            if full is None:
                raise
            raise full from e
        finally:
            tmp.unlink(missing_ok=True)  # a partial write never becomes the object

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        with self._atomic(self.path_for(key)) as f:
            f.write(data)

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        with open(path, "rb") as src:
            self.put_stream(key, src, content_type)

    def put_stream(self, key: str, stream: BinaryIO, content_type: str | None = None) -> int:
        return self._copy_in(self.path_for(key), stream)[0]

    def _copy_in(self, dest: Path, stream: BinaryIO) -> tuple[int, str]:
        """Copy in 1 MiB chunks (bounded memory); returns (bytes, md5 hex)."""
        digest = hashlib.md5(usedforsecurity=False)
        total = 0
        with self._atomic(dest) as f:
            while chunk := stream.read(CHUNK):
                f.write(chunk)
                digest.update(chunk)
                total += len(chunk)
        return total, digest.hexdigest()

    def put_folder(self, prefix: str, folder: Path) -> list[str]:
        files = folder_files(prefix, folder)
        for key, path in files:
            self.put_file(key, path)
        return [key for key, _ in files]

    # -- reads -----------------------------------------------------------------------------------

    def get_bytes(self, key: str) -> bytes:
        return self._existing(key).read_bytes()

    def get_file(self, key: str, path: Path) -> None:
        src = self._existing(key)
        with open(src, "rb") as s, self._atomic(Path(path).resolve()) as d:
            shutil.copyfileobj(s, d, CHUNK)

    def get_folder(self, prefix: str, folder: Path) -> list[str]:
        validate_prefix(prefix)
        folder = Path(folder)
        keys = []
        for info in self.list(_folder_prefix(prefix)):
            self.get_file(info.key, folder / relative_key(prefix, info.key))
            keys.append(info.key)
        return keys

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def size(self, key: str) -> int:
        return self._existing(key).stat().st_size

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Objects whose key starts with `prefix` (plain string match, as S3), sorted by key."""
        validate_prefix(prefix)
        base = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not base.is_dir():
            return []
        found = []
        for dirpath, dirnames, filenames in os.walk(base):
            here = Path(dirpath)
            if here == self.root:
                dirnames[:] = [d for d in dirnames if d != UPLOADS]
            for name in filenames:
                if name.startswith(TEMP_PREFIX):
                    continue
                key = (here / name).relative_to(self.root).as_posix()
                if key.startswith(prefix) and not key.startswith(f"{UPLOADS}/"):
                    with contextlib.suppress(FileNotFoundError):
                        found.append(ObjectInfo(key=key, size=(here / name).stat().st_size))
        return sorted(found, key=lambda i: i.key)

    # -- deletes ---------------------------------------------------------------------------------

    def delete(self, key: str) -> None:
        """Idempotent, as S3: deleting a missing key is not an error."""
        path = self.path_for(key)
        path.unlink(missing_ok=True)
        self._prune(path.parent)

    def delete_prefix(self, prefix: str) -> int:
        infos = self.list(prefix)
        for info in infos:
            self.delete(info.key)
        return len(infos)

    def _prune(self, folder: Path) -> None:
        """Remove empty folders up to (not including) the root."""
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    # -- signed URLs -----------------------------------------------------------------------------

    def _url(self, method: str, key: str, expires_in: float, extra: dict[str, str] | None = None) -> str:
        if not self.url_base:
            raise ConfigError(
                "the file store has no URL base for signed URLs",
                hint="set web.public_url (or web.host/web.port) so links point at the web app",
            )
        # GET URLs are aligned to the window so caches see one URL per object; PUTs stay exact.
        window = self.sign_window if method == "GET" else 0.0
        expires_at = signing.expiry(self.clock.now(), expires_in, window)
        return signing.signed_url(self.url_base, self.secret, method, key, expires_at, extra)

    def signed_get_url(self, key: str, expires_in: float, filename: str | None = None) -> str:
        self.path_for(key)
        return self._url("GET", key, expires_in, {"filename": filename} if filename else None)

    def signed_put_url(self, key: str, expires_in: float, content_type: str | None = None) -> str:
        self.path_for(key)
        return self._url("PUT", key, expires_in)

    def verify(self, method: str, key: str, query: dict[str, str]) -> None:
        """Check a request's signature against this store's secret and clock."""
        signing.verify_query(self.secret, method, key, query, now=self.clock.now())

    def accept_put(self, key: str, stream: BinaryIO) -> str:
        """Write the body of a verified signed PUT; returns the ETag (md5 hex) for the response.

        `key` is either a public key or a multipart part key `.uploads/<upload_id>/<n>`.
        """
        key = object_key(key)
        parts = key.split("/")
        if parts[0] == UPLOADS:
            if len(parts) != 3 or not parts[2].isdigit():
                raise InvalidKey(f"{key!r} is not a part key; expected .uploads/<upload_id>/<part number>")
            folder = self._upload_folder(parts[1])
            number = _part_number(int(parts[2]))
            return self._copy_in(folder / str(number), stream)[1]
        return self._copy_in(self.path_for(key), stream)[1]

    # -- multipart -------------------------------------------------------------------------------

    def _upload_folder(self, upload_id: str) -> Path:
        if not _UPLOAD_ID.match(upload_id):
            raise NotFound(f"no multipart upload {upload_id!r}", hint="start one with start_multipart")
        folder = self.root / UPLOADS / upload_id
        if not (folder / _META).is_file():
            raise NotFound(
                f"no multipart upload {upload_id!r}", hint="it was completed, aborted or never began"
            )
        return folder

    def _upload_for(self, key: str, upload_id: str) -> Path:
        folder = self._upload_folder(upload_id)
        meta = json.loads((folder / _META).read_text())
        if meta.get("key") != key:
            raise UploadError(f"multipart upload {upload_id} is for {meta.get('key')!r}, not {key!r}")
        return folder

    def start_multipart(self, key: str, content_type: str | None = None) -> str:
        self.path_for(key)
        upload_id = uuid.uuid4().hex
        meta = json.dumps({"key": key, "content_type": content_type}).encode()
        with self._atomic(self.root / UPLOADS / upload_id / _META) as f:
            f.write(meta)
        log.info("multipart upload started", extra={"key": key, "upload_id": upload_id})
        return upload_id

    def signed_part_url(self, key: str, upload_id: str, part_number: int, expires_in: float) -> str:
        self._upload_for(object_key(key), upload_id)
        part_key = f"{UPLOADS}/{upload_id}/{_part_number(part_number)}"
        return self._url("PUT", part_key, expires_in)

    def complete_multipart(self, key: str, upload_id: str, parts: builtins.list[tuple[int, str]]) -> None:
        """Concatenate the parts in order into `key`; each ETag must match its part's md5."""
        key = object_key(key)
        folder = self._upload_for(key, upload_id)
        if not parts:
            raise UploadError("a multipart upload needs at least one part")
        numbers = [_part_number(n) for n, _ in parts]
        if numbers != sorted(set(numbers)):
            raise UploadError(f"parts must be in ascending order without repeats, got {numbers}")
        with self._atomic(self.path_for(key)) as out:
            for number, etag in parts:
                part = folder / str(number)
                if not part.is_file():
                    raise UploadError(f"part {number} of upload {upload_id} was never uploaded")
                digest = hashlib.md5(usedforsecurity=False)
                with open(part, "rb") as src:
                    while chunk := src.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                if digest.hexdigest() != etag.strip('"').lower():
                    raise UploadError(f"part {number} ETag {etag!r} does not match what was uploaded")
        shutil.rmtree(folder, ignore_errors=True)
        log.info(
            "multipart upload completed", extra={"key": key, "upload_id": upload_id, "parts": len(parts)}
        )

    def abort_multipart(self, key: str, upload_id: str) -> None:
        shutil.rmtree(self._upload_for(object_key(key), upload_id), ignore_errors=True)

    def upload_bytes(self, upload_id: str) -> int:
        """Bytes of the parts received so far (the web app caps a multipart upload's total)."""
        folder = self._upload_folder(upload_id)
        return sum(p.stat().st_size for p in folder.iterdir() if p.name.isdigit())

    # -- sweeping --------------------------------------------------------------------------------

    def sweep_uploads(self, prefix: str, older_than: float) -> int:
        """Multipart uploads last touched before the cut-off (their parts too), then objects under
        `prefix` last written before it. Uploads for other prefixes are left alone."""
        validate_prefix(prefix)
        removed = 0
        uploads = self.root / UPLOADS
        if uploads.is_dir():
            for folder in uploads.iterdir():
                meta = folder / _META
                try:
                    key = json.loads(meta.read_text()).get("key", "")
                    newest = max(p.stat().st_mtime for p in folder.iterdir())
                except (OSError, ValueError):
                    key, newest = prefix, 0.0  # a half-written upload folder: sweep it by age
                    with contextlib.suppress(OSError):
                        newest = folder.stat().st_mtime
                if str(key).startswith(prefix) and newest < older_than:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed += 1
        for info in self.list(prefix):
            path = self._resolve(info.key)
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < older_than:
                    self.delete(info.key)
                    removed += 1
        if removed:
            log.info("abandoned uploads swept", extra={"prefix": prefix, "removed": removed})
        return removed

    def remove_stale_temp(self, older_than: float) -> int:
        """Temp files of writes that a killed process never finished (never listed, never served)."""
        removed = 0
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(TEMP_PREFIX):
                    path = Path(dirpath) / name
                    with contextlib.suppress(FileNotFoundError):
                        if path.stat().st_mtime < older_than:
                            path.unlink()
                            removed += 1
        return removed


def _part_number(n: int) -> int:
    if not 1 <= n <= MAX_PARTS:
        raise UploadError(f"part number {n} is outside 1-{MAX_PARTS}")
    return n


def _folder_prefix(prefix: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""
