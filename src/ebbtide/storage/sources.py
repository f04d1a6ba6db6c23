"""Sources in place: objects in a user's own bucket (`s3://bucket/key`), read where they are.

A media's `source_key` is either a key in ebbtide's store or a location `s3://bucket/key` on the
endpoint of `sources:` (Wasabi, MinIO, S3). A location is read, never written or deleted: the
bucket is the user's. The probe reads through `RangeReader`, which fetches only the byte ranges
the demuxer asks for, so probing a 4 GB match costs a few hundred KiB.
"""

from __future__ import annotations

import functools
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ebbtide.config.sections import SourcesConfig
from ebbtide.errors import InvalidKey, NotFound, Permanent
from ebbtide.storage.base import validate_key

SCHEME = "s3://"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


class SourceMissing(NotFound, Permanent):
    """The named object is not in its bucket: retrying will not make it appear."""


@dataclass(frozen=True)
class Location:
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


def is_location(value: str) -> bool:
    return value.startswith(SCHEME)


def parse_location(value: str) -> Location:
    """`s3://bucket/key` → Location; a bad bucket name or an unsafe key is InvalidKey."""
    if not is_location(value):
        raise InvalidKey(
            f"{value!r} is not an s3://bucket/key location", hint="write s3://bucket/path/file.mp4"
        )
    bucket, _, key = value[len(SCHEME) :].partition("/")
    if not _BUCKET.match(bucket):
        raise InvalidKey(
            f"{bucket!r} is not a valid bucket name", hint="3-63 lowercase letters, digits, . or -"
        )
    if not key or key.endswith("/"):
        raise InvalidKey(f"{value!r} names no object", hint="give the full key of one file")
    validate_key(key)
    return Location(bucket, key)


class Sources:
    """Read-only access to source buckets through one S3 client."""

    def __init__(self, cfg: SourcesConfig, client: Any = None) -> None:
        self.cfg = cfg
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            s3: Any = {"addressing_style": "path" if self.cfg.endpoint_url else "auto"}
            self._client = boto3.client(
                "s3", endpoint_url=self.cfg.endpoint_url, region_name=self.cfg.region,
                config=Config(signature_version="s3v4", s3=s3, retries={"mode": "standard"}),
            )  # fmt: skip
        return self._client

    def size(self, loc: Location) -> int:
        """Bytes in the object; SourceMissing if it is not there."""
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=loc.bucket, Key=loc.key)
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
                raise SourceMissing(f"source {loc} does not exist", hint="check the bucket and key") from None
            raise
        return int(head["ContentLength"])

    def get_file(self, loc: Location, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.size(loc)  # a clear SourceMissing rather than a bare 404
        self.client.download_file(loc.bucket, loc.key, str(path))

    def reader(self, loc: Location) -> RangeReader:
        return RangeReader(self.client, loc, self.size(loc))


class RangeReader(io.RawIOBase):
    """A seekable read-only file over ranged GETs; `bytes_read` counts what was fetched."""

    BLOCK = 256 * 1024

    def __init__(self, client: Any, loc: Location, size: int) -> None:
        super().__init__()
        self.client, self.loc, self.size = client, loc, size
        self.pos = 0
        self.bytes_read = 0
        self._cache: dict[int, bytes] = {}

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def _fetch(self, start: int, end: int) -> bytes:
        """Bytes start..end inclusive."""
        body = self.client.get_object(Bucket=self.loc.bucket, Key=self.loc.key, Range=f"bytes={start}-{end}")
        return bytes(body["Body"].read())

    def _block(self, n: int) -> bytes:
        if n not in self._cache:
            start = n * self.BLOCK
            end = min(self.size, start + self.BLOCK) - 1
            data = self._fetch(start, end)
            self.bytes_read += len(data)
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[n] = data
        return self._cache[n]

    def read(self, size: int = -1) -> bytes:
        if self.pos >= self.size:
            return b""
        end = self.size if size is None or size < 0 else min(self.size, self.pos + size)
        out = bytearray()
        while self.pos < end:
            n, off = divmod(self.pos, self.BLOCK)
            chunk = self._block(n)[off : off + (end - self.pos)]
            if not chunk:
                break
            out += chunk
            self.pos += len(chunk)
        return bytes(out)

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


class UrlRangeReader(RangeReader):
    """The same over HTTP range requests on a URL (a presigned GET of the store): what a probe
    reads of a source in the store, without the store's credentials in the reading process."""

    TIMEOUT = 30.0

    def __init__(self, url: str) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidKey("only http(s) URLs are read by range", hint="pass a presigned GET URL")
        self.url = url
        first, total = self._get(0, self.BLOCK - 1)
        super().__init__(None, Location("url", "source"), total)
        self._cache[0] = first
        self.bytes_read = len(first)

    def _get(self, start: int, end: int) -> tuple[bytes, int]:
        """(bytes start..end, the object's size from Content-Range)."""
        import urllib.error
        import urllib.request

        req = urllib.request.Request(self.url, headers={"Range": f"bytes={start}-{end}"})
        try:
            with urllib.request.urlopen(req, timeout=self.TIMEOUT) as r:
                if r.status != 206:
                    raise NotFound(
                        f"the source was not served by range (HTTP {r.status})", hint="check the store"
                    )
                total = str(r.headers.get("Content-Range", "")).rsplit("/", 1)[-1]
                return bytes(r.read(end - start + 1)), int(total) if total.isdigit() else 0
        except urllib.error.HTTPError as e:
            if e.code == 404:
                raise SourceMissing("the source is not in the store", hint="upload it again") from None
            if e.code == 416:  # an empty object has no byte 0
                return b"", 0
            raise

    def _fetch(self, start: int, end: int) -> bytes:
        return self._get(start, end)[0]


@functools.lru_cache(maxsize=8)
def open_sources(cfg: SourcesConfig) -> Sources:
    """One client per sources config in a process (boto3 clients are thread-safe)."""
    return Sources(cfg)
