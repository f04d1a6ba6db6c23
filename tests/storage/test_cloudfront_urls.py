"""CloudFront signed URLs for the S3 store (moto server for S3; the signature is checked with the
public half of the key, the way CloudFront checks it: RSA-SHA1 over the canned policy)."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ebbtide.clock import VirtualClock
from ebbtide.config.sections import StoreConfig
from ebbtide.errors import ConfigError
from ebbtide.storage import S3Store, open_store
from ebbtide.storage.cloudfront import CloudFrontUrls, from_config, load_private_key, public_key_pem

DOMAIN = "d111111abcdef8.cloudfront.net"
KEY_ID = "K2JCJMDEHXQW5F"


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("cf") / "cloudfront.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def _b64(text: str) -> bytes:
    return base64.b64decode(text.replace("-", "+").replace("_", "=").replace("~", "/"))


def cloudfront_accepts(url: str, public_pem: str, now: float) -> bool:
    """CloudFront's check of a canned-policy URL (AWS docs, "Create a signed URL using a canned policy")."""
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if set(q) != {"Expires", "Signature", "Key-Pair-Id"} or int(q["Expires"]) <= now:
        return False
    resource = f"{parts.scheme}://{parts.netloc}{parts.path}"
    until = {"DateLessThan": {"AWS:EpochTime": int(q["Expires"])}}
    policy = json.dumps({"Statement": [{"Resource": resource, "Condition": until}]}, separators=(",", ":"))
    public = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(public, rsa.RSAPublicKey)
    try:
        public.verify(_b64(q["Signature"]), policy.encode(), padding.PKCS1v15(), hashes.SHA1())
    except InvalidSignature:
        return False
    return True


def test_s3_store_signs_media_for_cloudfront_and_the_public_key_verifies_it(
    moto_endpoint: str, key_file: Path
) -> None:
    cfg = StoreConfig(
        url=f"s3://ebbtide-cf-{uuid.uuid4().hex[:10]}/media",
        endpoint_url=moto_endpoint,
        region="us-east-1",
        sign_window=3600,
        cloudfront_domain=DOMAIN,
        cloudfront_key_pair_id=KEY_ID,
        cloudfront_private_key=str(key_file),
    )
    store = open_store(cfg)
    assert isinstance(store, S3Store)
    key = "users/u1/media/m1/hls/a1/360p/seg 00001.m4s"
    store.put_bytes(key, b"segment bytes")
    url = store.signed_get_url(key, 600)
    parts = urlsplit(url)
    # the distribution's origin path is the store's prefix: the URL path is the key itself
    assert parts.scheme == "https" and parts.netloc == DOMAIN
    assert parts.path == "/users/u1/media/m1/hls/a1/360p/seg%2000001.m4s"
    q = parse_qs(parts.query)
    assert q["Key-Pair-Id"] == [KEY_ID] and int(q["Expires"][0]) % 3600 == 0
    public = public_key_pem(load_private_key(str(key_file)))  # what `aws deploy` uploads
    now = store.cdn.clock.now()
    assert cloudfront_accepts(url, public, now)
    # another object, or a longer life, is not covered by the signature
    other = url.replace("seg%2000001", "seg%2000002")
    assert not cloudfront_accepts(other, public, now)
    later = url.replace(f"Expires={q['Expires'][0]}", f"Expires={int(q['Expires'][0]) + 3600}")
    assert not cloudfront_accepts(later, public, now)
    assert not cloudfront_accepts(url, public, now + 2 * 3600 + 600)  # expired
    # a named download keeps S3's presigned URL (CloudFront would not pass the override on)
    named = store.signed_get_url(key, 600, filename="clip.m4s")
    assert urlsplit(named).netloc == urlsplit(moto_endpoint).netloc
    assert "response-content-disposition" in named


def test_one_url_per_window(key_file: Path) -> None:
    clock = VirtualClock(start=10 * 3600 + 5)
    urls = CloudFrontUrls(DOMAIN, KEY_ID, load_private_key(str(key_file)), window=3600, clock=clock)
    first = urls.url("a/seg.m4s", 600)
    clock.advance(2000)
    assert urls.url("a/seg.m4s", 600) == first  # same window: the same (cacheable) URL
    clock.advance(1600)
    assert urls.url("a/seg.m4s", 600) != first


def test_config_errors_name_the_file_never_the_key(tmp_path: Path, key_file: Path) -> None:
    s3 = "s3://bucket-name/media"
    assert from_config(StoreConfig(url=s3)) is None
    with pytest.raises(ConfigError, match="cloudfront_key_pair_id"):
        from_config(StoreConfig(url=s3, cloudfront_domain=DOMAIN, cloudfront_private_key=str(key_file)))
    full = {"cloudfront_domain": DOMAIN, "cloudfront_key_pair_id": KEY_ID}
    with pytest.raises(ConfigError, match="not S3"):
        from_config(StoreConfig(url="file:///tmp/x", cloudfront_private_key=str(key_file), **full))
    with pytest.raises(ConfigError, match="cannot read"):
        from_config(StoreConfig(url=s3, cloudfront_private_key=str(tmp_path / "none.pem"), **full))
    secret_text = key_file.read_text()
    broken = tmp_path / "broken.pem"
    broken.write_text(secret_text[:200])
    with pytest.raises(ConfigError) as e:
        from_config(StoreConfig(url=s3, cloudfront_private_key=str(broken), **full))
    assert "broken.pem" in str(e.value) and secret_text[40:80] not in str(e.value)
    signer = from_config(StoreConfig(url=s3, cloudfront_private_key=str(key_file), **full))
    assert signer is not None and "PRIVATE" not in repr(signer)
