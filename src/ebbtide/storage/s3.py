"""S3 (or Wasabi, MinIO, moto) as object store, through boto3.

Keys live under an optional prefix of one bucket. Big files go up in multipart (boto3's transfer
manager); browsers get presigned URLs and upload big files in parts (`MultipartUploads`).
"""

from __future__ import annotations

import builtins
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from ebbtide.errors import EbbtideError, NotFound
from ebbtide.storage.base import ObjectInfo, validate_prefix
from ebbtide.storage.content import cache_control_for, content_type_for
from ebbtide.storage.keys import StoreUnavailable, UploadError, folder_files, object_key, relative_key
from ebbtide.storage.signing import content_disposition

log = logging.getLogger(__name__)

# The IAM actions this store calls (presigned URLs act with the signer's rights); ebbtide.deploy
# writes the roles from these. Bucket-level ones apply to the bucket ARN, object ones to its keys.
BUCKET_ACTIONS = ("s3:ListBucket",)
OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
DELETE_BATCH = 1000  # the most keys one DeleteObjects call takes
_MISSING = {"404", "NoSuchKey", "NotFound"}
_BAD_UPLOAD = {"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "MalformedXML"}


@contextlib.contextmanager
def _errors(what: str) -> Iterator[None]:
    """Turn boto errors into ebbtide errors a person can act on."""
    try:
        yield
    except ClientError as e:
        code = str(e.response.get("Error", {}).get("Code", ""))
        if code in _MISSING:
            raise NotFound(f"{what}: not found") from None
        if code == "NoSuchUpload":
            raise NotFound(f"{what}: no such multipart upload", hint="it was completed or aborted") from None
        if code in _BAD_UPLOAD:
            raise UploadError(f"{what}: {code}: {e}", hint="parts other than the last need ≥ 5 MiB") from None
        raise StoreUnavailable(f"{what}: {code or 'error'}: {e}") from None
    except BotoCoreError as e:
        raise StoreUnavailable(f"{what}: {e}", hint="check store.endpoint_url and credentials") from None


class S3Store:
    def __init__(
        self,
        bucket: str,
        prefix: str,
        client: Any,
        multipart_threshold: int = 64 * 1024 * 1024,
        multipart_chunk: int = 16 * 1024 * 1024,
    ) -> None:
        self.bucket = bucket
        self.prefix = validate_prefix(prefix.strip("/") + "/") if prefix.strip("/") else ""
        self.client = client
        self.cdn: Any = None  # storage.cloudfront.CloudFrontUrls when store.cloudfront_* is set
        self.transfer = TransferConfig(
            multipart_threshold=multipart_threshold, multipart_chunksize=multipart_chunk, max_concurrency=4
        )

    def _full(self, key: str) -> str:
        return self.prefix + object_key(key)

    def _what(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def _extra(self, content_type: str | None, key: str = "") -> dict[str, Any] | None:
        """Every object gets a Content-Type (S3 would serve binary/octet-stream) and outputs a
        Cache-Control (see storage.content)."""
        extra: dict[str, Any] = {"ContentType": content_type or content_type_for(key)}
        cache = cache_control_for(key)
        if cache:
            extra["CacheControl"] = cache
        return extra

    # -- writes ----------------------------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._full(key), "Body": data}
        args.update(self._extra(content_type, key) or {})
        with _errors(self._what(key)):
            self.client.put_object(**args)

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        full = self._full(key)
        with _errors(self._what(key)):
            self.client.upload_file(
                str(path), self.bucket, full, ExtraArgs=self._extra(content_type, key), Config=self.transfer
            )

    def put_stream(self, key: str, stream: BinaryIO, content_type: str | None = None) -> int:
        counter = _Counting(stream)
        full = self._full(key)
        with _errors(self._what(key)):
            self.client.upload_fileobj(
                counter, self.bucket, full, ExtraArgs=self._extra(content_type, key), Config=self.transfer
            )
        return counter.count

    def put_folder(self, prefix: str, folder: Path) -> list[str]:
        files = folder_files(prefix, folder)
        for key, path in files:
            self.put_file(key, path)
        return [key for key, _ in files]

    # -- reads -----------------------------------------------------------------------------------

    def get_bytes(self, key: str) -> bytes:
        with _errors(self._what(key)):
            body = self.client.get_object(Bucket=self.bucket, Key=self._full(key))["Body"]
            with contextlib.closing(body):
                return bytes(body.read())

    def get_file(self, key: str, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _errors(self._what(key)):
            self.client.download_file(self.bucket, self._full(key), str(path), Config=self.transfer)

    def get_folder(self, prefix: str, folder: Path) -> list[str]:
        validate_prefix(prefix)
        head = prefix.strip("/")
        keys = []
        for info in self.list(f"{head}/" if head else ""):
            self.get_file(info.key, Path(folder) / relative_key(prefix, info.key))
            keys.append(info.key)
        return keys

    def _head(self, key: str) -> dict[str, Any]:
        with _errors(self._what(key)):
            return dict(self.client.head_object(Bucket=self.bucket, Key=self._full(key)))

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except NotFound:
            return False
        return True

    def size(self, key: str) -> int:
        return int(self._head(key)["ContentLength"])

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        validate_prefix(prefix)
        found = []
        paginator = self.client.get_paginator("list_objects_v2")
        with _errors(self._what(prefix)):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for obj in page.get("Contents", []):
                    found.append(ObjectInfo(key=obj["Key"][len(self.prefix) :], size=int(obj["Size"])))
        return sorted(found, key=lambda i: i.key)

    # -- deletes ---------------------------------------------------------------------------------

    def delete(self, key: str) -> None:
        with _errors(self._what(key)):
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))

    def delete_prefix(self, prefix: str) -> int:
        keys = [self.prefix + i.key for i in self.list(prefix)]
        for start in range(0, len(keys), DELETE_BATCH):
            batch = [{"Key": k} for k in keys[start : start + DELETE_BATCH]]
            with _errors(self._what(prefix)):
                resp = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            if resp.get("Errors"):
                first = resp["Errors"][0]
                raise StoreUnavailable(
                    f"deleting {len(resp['Errors'])} objects under {self._what(prefix)} failed: "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )
        return len(keys)

    # -- signed URLs -----------------------------------------------------------------------------

    def _presign(self, op: str, params: dict[str, Any], expires_in: float) -> str:
        if expires_in <= 0:
            raise EbbtideError(
                f"expires_in must be positive, got {expires_in}", hint="pass seconds, e.g. 3600"
            )
        with _errors(f"presigning {op}"):
            return str(self.client.generate_presigned_url(op, Params=params, ExpiresIn=int(expires_in)))

    def signed_get_url(self, key: str, expires_in: float, filename: str | None = None) -> str:
        if self.cdn is not None and not filename:  # downloads keep S3's Content-Disposition override
            return str(self.cdn.url(object_key(key), expires_in))  # the origin path is the prefix
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._full(key)}
        if filename:
            params["ResponseContentDisposition"] = content_disposition(filename)
        return self._presign("get_object", params, expires_in)

    def signed_put_url(self, key: str, expires_in: float, content_type: str | None = None) -> str:
        """The uploader must send the same Content-Type header when one is given here."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._full(key)}
        if content_type:
            params["ContentType"] = content_type
        return self._presign("put_object", params, expires_in)

    # -- multipart -------------------------------------------------------------------------------

    def start_multipart(self, key: str, content_type: str | None = None) -> str:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._full(key)}
        if content_type:
            args["ContentType"] = content_type
        with _errors(self._what(key)):
            upload_id = str(self.client.create_multipart_upload(**args)["UploadId"])
        log.info("multipart upload started", extra={"key": key, "upload_id": upload_id})
        return upload_id

    def signed_part_url(self, key: str, upload_id: str, part_number: int, expires_in: float) -> str:
        params = {
            "Bucket": self.bucket,
            "Key": self._full(key),
            "UploadId": upload_id,
            "PartNumber": part_number,
        }
        return self._presign("upload_part", params, expires_in)

    def complete_multipart(self, key: str, upload_id: str, parts: builtins.list[tuple[int, str]]) -> None:
        if not parts:
            raise UploadError("a multipart upload needs at least one part")
        numbers = [n for n, _ in parts]
        if numbers != sorted(set(numbers)):
            raise UploadError(f"parts must be in ascending order without repeats, got {numbers}")
        etags = [{"PartNumber": n, "ETag": e if e.startswith('"') else f'"{e}"'} for n, e in parts]
        with _errors(self._what(key)):
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=self._full(key), UploadId=upload_id, MultipartUpload={"Parts": etags}
            )
        log.info(
            "multipart upload completed", extra={"key": key, "upload_id": upload_id, "parts": len(parts)}
        )

    def abort_multipart(self, key: str, upload_id: str) -> None:
        with _errors(self._what(key)):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self._full(key), UploadId=upload_id)

    # -- sweeping abandoned uploads ---------------------------------------------------------------

    def sweep_uploads(self, prefix: str, older_than: float) -> int:
        """AbortMultipartUpload for uploads under `prefix` started before the cut-off, then delete
        the objects there last written before it (a bucket lifecycle rule is the backstop)."""
        validate_prefix(prefix)
        full = self.prefix + prefix
        removed = 0
        with _errors(self._what(prefix)):
            for page in self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=full
            ):
                for up in page.get("Uploads", []):
                    if up["Initiated"].timestamp() < older_than:
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=up["Key"], UploadId=up["UploadId"]
                        )
                        removed += 1
            stale = []
            objects = self.client.get_paginator("list_objects_v2")
            for page in objects.paginate(Bucket=self.bucket, Prefix=full):
                stale += [
                    o["Key"] for o in page.get("Contents", []) if o["LastModified"].timestamp() < older_than
                ]
            for start in range(0, len(stale), DELETE_BATCH):
                batch = [{"Key": k} for k in stale[start : start + DELETE_BATCH]]
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        removed += len(stale)
        if removed:
            log.info("abandoned uploads swept", extra={"prefix": prefix, "removed": removed})
        return removed


class _Counting:
    """A read-only stream wrapper that counts bytes and fills each read.

    s3transfer takes a short read for the end of the stream, but sockets and request bodies
    return short reads mid-stream; reading until `size` bytes or EOF keeps every byte.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            data = self._stream.read()
        else:
            pieces: list[bytes] = []
            want = size
            while want > 0:
                piece = self._stream.read(want)
                if not piece:
                    break
                pieces.append(piece)
                want -= len(piece)
            data = b"".join(pieces)
        self.count += len(data)
        return data
