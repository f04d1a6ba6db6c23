"""CloudFront signed URLs for media in the S3 store (docs/serving.md, "S3 and CloudFront").

With `store.cloudfront_domain`, `store.cloudfront_key_pair_id` and `store.cloudfront_private_key`
set, players fetch segments, init sections and thumbnails from the distribution instead of the
bucket: `https://<domain>/<key>?Expires=…&Signature=…&Key-Pair-Id=…` (a canned policy, RSA-SHA1 as
CloudFront requires, signed with botocore's `CloudFrontSigner` and `cryptography`). The expiry is
aligned to `store.sign_window`, so everyone opening a video within one window gets the same URL;
the distribution checks the signature at the edge and caches by path. The bucket is reached only
through the distribution's origin access control (`ebbtide aws plan` with `aws.cdn`).

The private key is read once when the store opens; its text never reaches a log or an error
(errors name the file only).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ebbtide.clock import SYSTEM_CLOCK, Clock
from ebbtide.config.sections import StoreConfig
from ebbtide.errors import ConfigError
from ebbtide.storage import signing

FIELDS = ("cloudfront_domain", "cloudfront_key_pair_id", "cloudfront_private_key")


def load_private_key(path: str) -> Any:
    """An RSA private key from a PEM file (unencrypted), or a ConfigError naming the file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    file = Path(path).expanduser()
    try:
        pem = file.read_bytes()
    except OSError as e:
        raise ConfigError(
            f"cannot read store.cloudfront_private_key {str(file)!r}: {e.strerror}",
            hint="give the path of the PEM private key whose public half is in the distribution's key group",
        ) from None
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError(
            f"store.cloudfront_private_key {str(file)!r} is not an unencrypted PEM private key",
            hint="make one with: openssl genrsa -out cloudfront.pem 2048",
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(
            f"store.cloudfront_private_key {str(file)!r} is not an RSA key",
            hint="CloudFront signed URLs need an RSA key: openssl genrsa -out cloudfront.pem 2048",
        )
    return key


def public_key_pem(private_key: Any) -> str:
    """The public half in the PEM form CloudFront's PublicKey resource takes."""
    from cryptography.hazmat.primitives import serialization

    raw: bytes = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return raw.decode("ascii")


class CloudFrontUrls:
    """Signs GET URLs of store keys on one distribution."""

    def __init__(
        self,
        domain: str,
        key_pair_id: str,
        private_key: Any,
        window: float = 0.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        from botocore.signers import CloudFrontSigner

        self.domain = domain.removeprefix("https://").strip("/")
        self.key_pair_id = key_pair_id
        self.window = window
        self.clock = clock
        self._signer = CloudFrontSigner(key_pair_id, _rsa_sha1(private_key))

    def url(self, path: str, expires_in: float) -> str:
        """`path` is the object's path behind the distribution (the key under its origin path)."""
        expires = signing.expiry(self.clock.now(), expires_in, self.window)
        target = f"https://{self.domain}/{quote(path, safe='/')}"
        until = datetime.fromtimestamp(expires, UTC)
        signed: str = self._signer.generate_presigned_url(target, date_less_than=until)
        return signed

    def __repr__(self) -> str:  # the key stays out of reprs and logs
        return f"CloudFrontUrls(domain={self.domain!r}, key_pair_id={self.key_pair_id!r})"


def _rsa_sha1(private_key: Any) -> Any:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    def sign(message: bytes) -> bytes:
        signature: bytes = private_key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # CloudFront's scheme
        return signature

    return sign


def from_config(cfg: StoreConfig, clock: Clock = SYSTEM_CLOCK) -> CloudFrontUrls | None:
    """The signer the config asks for: all three keys set, or none (then URLs stay S3 presigned)."""
    values = [getattr(cfg, f) for f in FIELDS]
    if not any(values):
        return None
    missing = [f"store.{f}" for f, v in zip(FIELDS, values, strict=True) if not v]
    if missing:
        raise ConfigError(
            f"CloudFront signing needs {', '.join(missing)} too",
            hint="set all of store.cloudfront_domain, cloudfront_key_pair_id and cloudfront_private_key, "
            "or none of them",
        )
    if not cfg.url.startswith("s3://"):
        raise ConfigError(
            "store.cloudfront_domain is set but the store is not S3",
            hint="CloudFront fronts the S3 bucket; the file store's URLs are served by the web app",
        )
    key = load_private_key(str(cfg.cloudfront_private_key))
    domain, key_id = str(cfg.cloudfront_domain), str(cfg.cloudfront_key_pair_id)
    return CloudFrontUrls(domain, key_id, key, cfg.sign_window, clock)
