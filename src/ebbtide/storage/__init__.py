"""The object store port and its backends, chosen by the URL in `store.url`.

`file:///abs/path` is a local folder whose URLs the web app serves (see `signing`);
`s3://bucket/optional/prefix` is S3 or anything S3-compatible at `store.endpoint_url`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from ebbtide.clock import SYSTEM_CLOCK, Clock
from ebbtide.config.sections import StoreConfig
from ebbtide.errors import ConfigError
from ebbtide.storage.base import MultipartUploads, ObjectInfo, ObjectStore, validate_key, validate_prefix
from ebbtide.storage.file import FileStore
from ebbtide.storage.keys import StoreUnavailable, UploadError
from ebbtide.storage.signing import SignatureError

if TYPE_CHECKING:
    from ebbtide.storage.s3 import S3Store

__all__ = [
    "FileStore",
    "MultipartUploads",
    "ObjectInfo",
    "ObjectStore",
    "S3Store",
    "SignatureError",
    "StoreUnavailable",
    "UploadError",
    "open_store",
    "validate_key",
]

log = logging.getLogger(__name__)


def __getattr__(name: str) -> Any:
    # boto3 takes a quarter of a second to import; only S3 users pay for it.
    if name == "S3Store":
        from ebbtide.storage.s3 import S3Store

        return S3Store
    raise AttributeError(name)

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


def open_store(
    cfg: StoreConfig, url_base: str | None = None, clock: Clock = SYSTEM_CLOCK
) -> FileStore | S3Store:
    """`url_base` is where the web app serves `/files/…`; only the file store needs it."""
    url = urlparse(cfg.url)
    if url.scheme == "file":
        return _open_file(cfg, url.netloc, url.path, url_base, clock)
    if url.scheme == "s3":
        return _open_s3(cfg, url.netloc, url.path)
    raise ConfigError(
        f"store.url {cfg.url!r} has an unknown scheme",
        hint="use file:///absolute/folder or s3://bucket/optional/prefix",
    )


def _open_file(cfg: StoreConfig, host: str, path: str, url_base: str | None, clock: Clock) -> FileStore:
    if host not in ("", "localhost") or not path.startswith("/"):
        raise ConfigError(
            f"store.url {cfg.url!r} must name an absolute folder",
            hint="write three slashes: file:///srv/ebbtide/store",
        )
    if not cfg.secret:
        raise ConfigError(
            "store.secret is required for a file:// store", hint="the file store signs its URLs"
        )
    return FileStore(
        Path(unquote(path)), cfg.secret, url_base=url_base, clock=clock, sign_window=cfg.sign_window
    )


def _open_s3(cfg: StoreConfig, bucket: str, path: str) -> S3Store:
    if not _BUCKET.match(bucket):
        raise ConfigError(
            f"store.url {cfg.url!r} has no valid bucket name",
            hint="s3://my-bucket/optional/prefix (3-63 lowercase letters, digits, dots, hyphens)",
        )
    prefix = unquote(path).strip("/")
    if prefix:
        try:
            validate_prefix(prefix + "/")
        except Exception as e:
            raise ConfigError(f"store.url {cfg.url!r} has a bad prefix: {e}") from None
    from ebbtide.storage.s3 import S3Store

    client = make_client(cfg)
    store = S3Store(
        bucket,
        prefix,
        client,
        multipart_threshold=cfg.multipart_threshold,
        multipart_chunk=cfg.multipart_chunk,
    )
    from ebbtide.storage.cloudfront import from_config

    store.cdn = from_config(cfg)
    ensure_bucket(client, bucket, cfg.region)
    return store


def make_client(cfg: StoreConfig) -> Any:
    import boto3
    from botocore.config import Config

    # Path-style addressing works on MinIO, Wasabi and moto; virtual-host style needs DNS per bucket.
    s3: Any = {"addressing_style": "path" if cfg.endpoint_url else "auto"}
    config = Config(signature_version="s3v4", s3=s3, retries={"mode": "standard"})
    return boto3.client("s3", endpoint_url=cfg.endpoint_url, region_name=cfg.region, config=config)


def ensure_bucket(client: Any, bucket: str, region: str | None) -> None:
    """Create the bucket if it does not exist (a fresh MinIO or moto has none)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client.head_bucket(Bucket=bucket)
        return
    except ClientError as e:
        code = str(e.response.get("Error", {}).get("Code", ""))
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise StoreUnavailable(
                f"bucket {bucket!r} is not usable: {code}", hint="check the credentials and bucket policy"
            ) from None
    except BotoCoreError as e:
        raise StoreUnavailable(
            f"cannot reach S3 for bucket {bucket!r}: {e}", hint="check store.endpoint_url"
        ) from None
    args: dict[str, Any] = {"Bucket": bucket}
    if region and region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**args)
    except ClientError as e:
        code = str(e.response.get("Error", {}).get("Code", ""))
        if code not in ("BucketAlreadyOwnedByYou",):
            raise StoreUnavailable(f"cannot create bucket {bucket!r}: {code}: {e}") from None
    log.info("bucket created", extra={"bucket": bucket})
