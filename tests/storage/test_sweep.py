"""Sweeping abandoned uploads on both backends: multipart uploads never completed (S3:
AbortMultipartUpload on moto over HTTP) and inbox objects, only under the prefix and only when old."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from ebbtide.storage.base import UploadSweeper
from ebbtide.storage.file import FileStore
from ebbtide.storage.s3 import S3Store

INBOX = "inbox/"


def test_s3_sweep_aborts_old_multipart_uploads_and_deletes_inbox_objects(s3_store: S3Store) -> None:
    store = s3_store
    assert isinstance(store, UploadSweeper)
    old_upload = store.start_multipart("inbox/u1/m1/upload")
    store.put_bytes("inbox/u1/m2/upload", b"abandoned")
    store.put_bytes("users/u1/media/m3/source/original", b"kept")
    other = store.start_multipart("users/u1/media/m3/other")
    # a fresh object survives a cut-off in the past (moto reports every multipart upload as
    # initiated in 2010, so only a real bucket can show a fresh multipart upload surviving too)
    store.sweep_uploads(INBOX, time.time() - 3600)
    assert store.exists("inbox/u1/m2/upload")
    store.sweep_uploads(INBOX, time.time() + 5)  # everything under inbox/ is "old"
    ups = store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
    assert [u["UploadId"] for u in ups] == [other]  # the one outside the prefix stays
    assert old_upload not in [u["UploadId"] for u in ups]
    assert not store.exists("inbox/u1/m2/upload") and store.exists("users/u1/media/m3/source/original")


def _age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_file_sweep_removes_old_uploads_parts_and_inbox_objects(file_store: FileStore) -> None:
    store = file_store
    old = store.start_multipart("inbox/u1/m1/upload")
    store.accept_put(f".uploads/{old}/1", io.BytesIO(b"part one"))
    fresh = store.start_multipart("inbox/u1/m2/upload")
    store.put_bytes("inbox/u1/m3/upload", b"abandoned")
    store.put_bytes("inbox/u1/m4/upload", b"just now")
    store.put_bytes("users/u1/media/m5/source/original", b"kept")
    for p in (store.root / ".uploads" / old).iterdir():
        _age(p, 7200)
    _age(store.root / "inbox/u1/m3/upload", 7200)
    _age(store.root / "users/u1/media/m5/source/original", 7200)
    assert store.upload_bytes(old) == len(b"part one")
    assert store.sweep_uploads(INBOX, time.time() - 3600) == 2
    assert not (store.root / ".uploads" / old).exists() and (store.root / ".uploads" / fresh).exists()
    assert not store.exists("inbox/u1/m3/upload") and store.exists("inbox/u1/m4/upload")
    assert store.exists("users/u1/media/m5/source/original")


def test_file_store_removes_stale_temp_files(file_store: FileStore) -> None:
    store = file_store
    store.put_bytes("users/u/a", b"x")
    dead = store.root / "users/u/.ebbtide-tmp-dead"
    live = store.root / "users/u/.ebbtide-tmp-live"
    dead.write_bytes(b"half")
    live.write_bytes(b"writing")
    _age(dead, 3600)
    assert store.remove_stale_temp(time.time() - 600) == 1
    assert not dead.exists() and live.exists() and store.exists("users/u/a")


@pytest.mark.parametrize("mode", [0o600])
def test_file_store_objects_are_private(file_store: FileStore, mode: int) -> None:
    file_store.put_bytes("users/u/b", b"x")
    assert (file_store.root / "users/u/b").stat().st_mode & 0o777 == mode
    assert file_store.root.stat().st_mode & 0o777 == 0o700
