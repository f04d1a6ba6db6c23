"""Browser-style multipart uploads on both backends: each part PUT over HTTP to its signed URL."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest

from ebbtide.errors import NotFound
from ebbtide.storage import FileStore, MultipartUploads, S3Store, UploadError

MiB = 1024 * 1024
Store = FileStore | S3Store


def _put_parts(store: Store, key: str, upload_id: str, parts: list[bytes]) -> list[tuple[int, str]]:
    done = []
    with httpx.Client(timeout=30) as http:
        for n, data in enumerate(parts, start=1):
            r = http.put(store.signed_part_url(key, upload_id, n, 300), content=data)
            assert r.status_code == 200, r.text
            done.append((n, r.headers["etag"]))
    return done


def test_three_part_upload(store: Store) -> None:
    """S3 needs every part but the last to be at least 5 MiB."""
    assert isinstance(store, MultipartUploads)
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(1000)]
    upload_id = store.start_multipart("uploads/big.mp4", content_type="video/mp4")
    etags = _put_parts(store, "uploads/big.mp4", upload_id, parts)
    assert [e.strip('"') for _, e in etags] == [hashlib.md5(p).hexdigest() for p in parts]
    assert not store.exists("uploads/big.mp4")
    store.complete_multipart("uploads/big.mp4", upload_id, etags)
    assert store.size("uploads/big.mp4") == 10 * MiB + 1000
    assert (
        hashlib.sha256(store.get_bytes("uploads/big.mp4")).digest()
        == hashlib.sha256(b"".join(parts)).digest()
    )
    assert [i.key for i in store.list()] == ["uploads/big.mp4"]  # no staging parts are listed


def test_abort_discards_parts(store: Store) -> None:
    """moto answers 500 (not S3's NoSuchUpload) when completing an aborted upload, so on S3 the
    abort is checked through ListMultipartUploads instead."""
    upload_id = store.start_multipart("uploads/gone.mp4")
    etags = _put_parts(store, "uploads/gone.mp4", upload_id, [b"small part"])
    store.abort_multipart("uploads/gone.mp4", upload_id)
    if isinstance(store, FileStore):
        with pytest.raises(NotFound):
            store.complete_multipart("uploads/gone.mp4", upload_id, etags)
        assert list((store.root / ".uploads").iterdir()) == []
    else:
        open_uploads = store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
        assert [u["UploadId"] for u in open_uploads] == []
    assert not store.exists("uploads/gone.mp4")
    assert store.list() == []


def test_wrong_etag_or_order_is_refused_and_loses_nothing(store: Store) -> None:
    upload_id = store.start_multipart("u/x")
    etags = _put_parts(store, "u/x", upload_id, [b"only"])
    with pytest.raises(UploadError):
        store.complete_multipart("u/x", upload_id, [(1, '"' + "0" * 32 + '"')])
    with pytest.raises(UploadError):
        store.complete_multipart("u/x", upload_id, [(2, etags[0][1]), (1, etags[0][1])])
    with pytest.raises(UploadError):
        store.complete_multipart("u/x", upload_id, [])
    assert not store.exists("u/x")
    store.complete_multipart("u/x", upload_id, etags)  # the parts survived the bad attempts
    assert store.get_bytes("u/x") == b"only"


def test_unknown_upload_id_is_not_found(file_store: FileStore) -> None:
    """File store only: moto answers 500 where S3 answers NoSuchUpload (mapped to NotFound)."""
    with pytest.raises(NotFound):
        file_store.complete_multipart("u/x", "0" * 32, [(1, "e")])
    with pytest.raises(NotFound):
        file_store.abort_multipart("u/x", "not-an-id")


def test_file_part_urls_are_bound_to_their_upload(file_store: FileStore) -> None:
    a = file_store.start_multipart("a.mp4")
    with pytest.raises(UploadError):
        file_store.signed_part_url("b.mp4", a, 1, 60)  # another key
    with pytest.raises(NotFound):
        file_store.signed_part_url("a.mp4", "../../etc", 1, 60)
    with pytest.raises(UploadError):
        file_store.signed_part_url("a.mp4", a, 0, 60)
    url = file_store.signed_part_url("a.mp4", a, 1, 60)
    assert f"/files/.uploads/{a}/1?expires=" in url
    # a part URL can only PUT that part; it cannot read or write a public key
    assert httpx.get(url).status_code == 403
    assert httpx.put(url.replace(f".uploads/{a}/1", "a.mp4"), content=b"x").status_code == 403
