"""What only one backend does: the file store's paths and memory bound, S3's prefix and multipart."""

from __future__ import annotations

import io
import os
import tracemalloc
import uuid
from pathlib import Path

import pytest

from ebbtide.config.sections import StoreConfig
from ebbtide.errors import ConfigError, InvalidKey
from ebbtide.storage import FileStore, S3Store, open_store

MiB = 1024 * 1024


class Zeros(io.RawIOBase):
    """A generated stream that allocates only what each read returns."""

    def __init__(self, total: int) -> None:
        self.left = total

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        n = self.left if size is None or size < 0 else min(size, self.left)
        self.left -= n
        return bytes(n)


# -- file store --------------------------------------------------------------------------------


def test_file_put_stream_memory_stays_bounded(file_store: FileStore) -> None:
    total = 20 * MiB
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        written = file_store.put_stream("big.bin", Zeros(total))  # type: ignore[arg-type]
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert written == total == file_store.size("big.bin")
    assert peak < 4 * MiB, f"put_stream peaked at {peak / MiB:.1f} MiB for a 20 MiB stream"


def test_file_keys_cannot_escape_through_symlinks(file_store: FileStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"top secret")
    (file_store.root / "link").symlink_to(outside)
    with pytest.raises(InvalidKey):
        file_store.get_bytes("link/secret")
    with pytest.raises(InvalidKey):
        file_store.put_bytes("link/new", b"x")
    assert not (outside / "new").exists()


def test_file_reserved_keys_are_refused(file_store: FileStore) -> None:
    upload_id = file_store.start_multipart("x.bin")
    for key in [f".uploads/{upload_id}/upload.json", ".uploads/x", "a/.ebbtide-tmp-123"]:
        with pytest.raises(InvalidKey):
            file_store.path_for(key)
        with pytest.raises(InvalidKey):
            file_store.put_bytes(key, b"x")
    with pytest.raises(InvalidKey):
        file_store.accept_put(f".uploads/{upload_id}/upload.json", io.BytesIO(b"{}"))  # type: ignore[arg-type]
    assert file_store.list() == []


def test_file_failed_write_leaves_old_object_and_no_temp(file_store: FileStore) -> None:
    class Broken(io.RawIOBase):
        def __init__(self) -> None:
            self.calls = 0

        def read(self, size: int | None = -1) -> bytes:
            self.calls += 1
            if self.calls > 2:
                raise OSError("connection reset")
            return b"new" * 10

    file_store.put_bytes("v.txt", b"old")
    with pytest.raises(OSError, match="connection reset"):
        file_store.put_stream("v.txt", Broken())  # type: ignore[arg-type]
    assert file_store.get_bytes("v.txt") == b"old"
    assert [p.name for p in file_store.root.iterdir()] == ["v.txt"]


def test_open_store_file_url_rules(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="secret"):
        open_store(StoreConfig(url=f"file://{tmp_path}"))
    with pytest.raises(ConfigError, match="absolute") as info:
        open_store(StoreConfig(url="file://relative/folder", secret="x"))
    assert info.value.hint and "file:///" in info.value.hint
    store = open_store(StoreConfig(url=f"file://{tmp_path}/s%20p", secret="x"))
    assert isinstance(store, FileStore) and store.root == tmp_path / "s p"


def test_open_store_unknown_scheme_is_a_config_error() -> None:
    cfg = StoreConfig.model_construct(url="ftp://host/x")  # bypasses the section's own URL check
    with pytest.raises(ConfigError) as info:
        open_store(cfg)
    assert info.value.hint


# -- s3 ----------------------------------------------------------------------------------------


def test_s3_bad_bucket_name_is_a_config_error(moto_endpoint: str) -> None:
    with pytest.raises(ConfigError, match="bucket"):
        open_store(StoreConfig(url="s3://Bad_Bucket/x", endpoint_url=moto_endpoint))


def test_s3_prefixes_isolate_stores_in_one_bucket(moto_endpoint: str) -> None:
    bucket = f"ebbtide-test-{uuid.uuid4().hex[:12]}"
    a = open_store(StoreConfig(url=f"s3://{bucket}/tenant-a", endpoint_url=moto_endpoint))
    b = open_store(StoreConfig(url=f"s3://{bucket}/tenant-b/", endpoint_url=moto_endpoint))
    root = open_store(StoreConfig(url=f"s3://{bucket}", endpoint_url=moto_endpoint))  # bucket exists now
    assert isinstance(a, S3Store) and isinstance(b, S3Store)
    a.put_bytes("k", b"a")
    b.put_bytes("k", b"b")
    assert (a.get_bytes("k"), b.get_bytes("k")) == (b"a", b"b")
    assert [i.key for i in root.list()] == ["tenant-a/k", "tenant-b/k"]
    assert a.delete_prefix("") == 1
    assert [i.key for i in root.list()] == ["tenant-b/k"]


def test_s3_put_file_goes_multipart_above_the_threshold(s3_store: S3Store, tmp_path: Path) -> None:
    """The fixture's threshold and chunk are 5 MiB: 11 MiB goes up as 3 parts (ETag ends in -3)."""
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(11 * MiB))
    s3_store.put_file("big.bin", src)
    small = tmp_path / "small.bin"
    small.write_bytes(b"tiny")
    s3_store.put_file("small.bin", small)
    head = s3_store.client.head_object(Bucket=s3_store.bucket, Key=s3_store.prefix + "big.bin")
    assert head["ETag"].strip('"').endswith("-3")
    head = s3_store.client.head_object(Bucket=s3_store.bucket, Key=s3_store.prefix + "small.bin")
    assert "-" not in head["ETag"]
    assert s3_store.size("big.bin") == 11 * MiB


def test_s3_content_type_is_kept(s3_store: S3Store) -> None:
    s3_store.put_bytes("p.m3u8", b"#EXTM3U", content_type="application/vnd.apple.mpegurl")
    head = s3_store.client.head_object(Bucket=s3_store.bucket, Key=s3_store.prefix + "p.m3u8")
    assert head["ContentType"] == "application/vnd.apple.mpegurl"


def test_s3_unreachable_endpoint_is_a_clear_error() -> None:
    import socket

    from ebbtide.storage import StoreUnavailable

    with socket.socket() as s:  # a port that nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = StoreConfig(url="s3://ebbtide-nowhere", endpoint_url=f"http://127.0.0.1:{port}")
    with pytest.raises(StoreUnavailable) as info:
        open_store(cfg)
    assert info.value.hint


def test_file_key_that_is_also_a_folder_is_a_clear_error(file_store: FileStore) -> None:
    file_store.put_bytes("a/b", b"x")
    with pytest.raises(InvalidKey) as info:
        file_store.put_bytes("a", b"y")
    assert info.value.hint
    file_store.put_bytes("f", b"file")
    with pytest.raises(InvalidKey):
        file_store.put_bytes("f/g", b"y")
    assert [i.key for i in file_store.list()] == ["a/b", "f"]
