"""Signed URLs on both backends, used over real HTTP: moto for S3, a stdlib server for the file store."""

from __future__ import annotations

import hashlib
import os
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest

from ebbtide.clock import VirtualClock
from ebbtide.storage import FileStore, S3Store
from ebbtide.storage.signing import (
    SignatureError,
    content_disposition,
    sign,
    signed_url,
    verify,
    verify_query,
)

Store = FileStore | S3Store
SECRET = "k3y"


# -- signing (pure) ------------------------------------------------------------------------------


def test_sign_verify_round_trip() -> None:
    sig = sign(SECRET, "GET", "media/1/a b.mp4", 2_000)
    verify(SECRET, "GET", "media/1/a b.mp4", 2_000, sig, now=1_999.5)
    verify(SECRET, "get", "media/1/a b.mp4", 2_000, sig.upper(), now=2_000)  # expiry is inclusive


def test_expired_signature_is_refused() -> None:
    sig = sign(SECRET, "GET", "k", 2_000)
    with pytest.raises(SignatureError) as info:
        verify(SECRET, "GET", "k", 2_000, sig, now=2_000.01)
    assert info.value.reason == "expired"
    assert info.value.hint


@pytest.mark.parametrize(
    ("method", "key", "expires", "secret"),
    [
        ("GET", "other", 2_000, SECRET),  # another key
        ("GET", "k", 9_999, SECRET),  # a longer expiry
        ("PUT", "k", 2_000, SECRET),  # a GET signature used to PUT
        ("GET", "k", 2_000, "other secret"),
    ],
)
def test_tampered_signature_is_refused(method: str, key: str, expires: int, secret: str) -> None:
    sig = sign(SECRET, "GET", "k", 2_000)
    with pytest.raises(SignatureError) as info:
        verify(secret, method, key, expires, sig, now=1_000)
    assert info.value.reason == "bad signature"


@pytest.mark.parametrize("query", [{}, {"expires": "2000"}, {"expires": "soon", "sig": "00"}, {"sig": "ab"}])
def test_malformed_query_is_a_bad_signature(query: dict[str, str]) -> None:
    with pytest.raises(SignatureError, match="bad signature"):
        verify_query(SECRET, "GET", "k", query, now=0)


def test_non_ascii_signature_is_refused_not_crashing() -> None:
    with pytest.raises(SignatureError, match="bad signature"):
        verify(SECRET, "GET", "k", 2_000, "é" * 64, now=0)


def test_signed_url_format_is_what_the_web_app_parses() -> None:
    url = signed_url("http://h:8000/", SECRET, "PUT", "a/b c+d.mp4", 1234)
    parts = urlsplit(url)
    assert parts.path == "/files/a/b%20c%2Bd.mp4"
    assert unquote(parts.path[len("/files/") :]) == "a/b c+d.mp4"
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert q["expires"] == "1234"
    verify_query(SECRET, "PUT", "a/b c+d.mp4", q, now=1000)


def test_content_disposition_is_safe() -> None:
    value = content_disposition('évil"\r\nSet-Cookie: x.mp4')
    assert "\r" not in value and "\n" not in value
    assert value.startswith('attachment; filename="_vil_Set-Cookie: x.mp4"')
    assert "filename*=UTF-8''%C3%A9vil%22Set-Cookie%3A%20x.mp4" in value


# -- both backends over HTTP ---------------------------------------------------------------------


def test_signed_get_url_downloads(store: Store) -> None:
    data = os.urandom(50_000)
    store.put_bytes("media/7/source.mp4", data, content_type="video/mp4")
    r = httpx.get(store.signed_get_url("media/7/source.mp4", 60), timeout=10)
    assert r.status_code == 200
    assert r.content == data


def test_signed_get_url_with_filename_sets_content_disposition(store: Store) -> None:
    store.put_bytes("media/7/source.mp4", b"abc")
    r = httpx.get(store.signed_get_url("media/7/source.mp4", 60, filename="My Match.mp4"), timeout=10)
    assert r.status_code == 200
    assert r.content == b"abc"
    assert 'filename="My Match.mp4"' in r.headers["content-disposition"]


def test_signed_put_url_uploads(store: Store) -> None:
    data = os.urandom(20_000)
    url = store.signed_put_url("uploads/u1/clip.mp4", 60)
    r = httpx.put(url, content=data, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["etag"].strip('"') == hashlib.md5(data).hexdigest()
    assert store.get_bytes("uploads/u1/clip.mp4") == data


def test_nonpositive_expiry_is_refused(store: Store) -> None:
    with pytest.raises(Exception, match="expires_in must be positive"):
        store.signed_get_url("k", 0)


# -- the file store's own refusals, over HTTP --------------------------------------------------


def test_file_url_expires(file_store: FileStore, clock: VirtualClock) -> None:
    file_store.put_bytes("k.txt", b"x")
    url = file_store.signed_get_url("k.txt", 30)
    assert httpx.get(url).status_code == 200
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    assert expires >= clock.now() + 30  # aligned to the signing window, never shorter than asked
    clock.advance(expires - clock.now() + 1)
    r = httpx.get(url)
    assert (r.status_code, r.text) == (403, "expired")


def test_file_url_tampered_is_refused(file_store: FileStore) -> None:
    file_store.put_bytes("a.txt", b"a")
    file_store.put_bytes("b.txt", b"b")
    url = file_store.signed_get_url("a.txt", 30)
    other = url.replace("/files/a.txt", "/files/b.txt")
    assert (httpx.get(other).status_code, httpx.get(other).text) == (403, "bad signature")
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    later = url.replace(f"expires={q['expires']}", f"expires={int(q['expires']) + 3600}")
    assert httpx.get(later).status_code == 403


def test_file_get_url_cannot_put(file_store: FileStore) -> None:
    file_store.put_bytes("a.txt", b"original")
    r = httpx.put(file_store.signed_get_url("a.txt", 30), content=b"overwritten")
    assert (r.status_code, r.text) == (403, "bad signature")
    assert file_store.get_bytes("a.txt") == b"original"


def test_file_signed_urls_need_a_url_base(tmp_path: object) -> None:
    from pathlib import Path

    from ebbtide.errors import ConfigError

    store = FileStore(Path(str(tmp_path)) / "s", secret="x", url_base=None)
    with pytest.raises(ConfigError) as info:
        store.signed_get_url("k", 10)
    assert info.value.hint
