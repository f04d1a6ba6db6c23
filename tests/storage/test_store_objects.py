"""The ObjectStore conformance suite: every test runs on the file store and on S3 (moto server)."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from ebbtide.errors import InvalidKey, NotFound
from ebbtide.storage import FileStore, S3Store
from ebbtide.storage.base import ObjectInfo, ObjectStore

MiB = 1024 * 1024
Store = FileStore | S3Store


class PatternStream(io.RawIOBase):
    """`total` bytes of a repeating random block, generated on read so the test holds ~1 MiB."""

    def __init__(self, total: int, block: bytes) -> None:
        self.left, self.block, self.pos = total, block, 0
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        want = self.left if size is None or size < 0 else min(size, self.left)
        start = self.pos % len(self.block)
        chunk = self.block[start : start + want]
        self.left -= len(chunk)
        self.pos += len(chunk)
        self.sha.update(chunk)
        return chunk

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def sha_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def test_both_backends_satisfy_the_port(store: Store) -> None:
    assert isinstance(store, ObjectStore)


def test_bytes_round_trip_and_overwrite(store: Store) -> None:
    store.put_bytes("a/b/c.txt", b"hello", content_type="text/plain")
    assert store.get_bytes("a/b/c.txt") == b"hello"
    store.put_bytes("a/b/c.txt", b"hello again")
    assert store.get_bytes("a/b/c.txt") == b"hello again"
    assert store.size("a/b/c.txt") == 11
    store.put_bytes("empty", b"")
    assert store.get_bytes("empty") == b""
    assert store.size("empty") == 0


def test_keys_with_allowed_odd_characters(store: Store) -> None:
    key = "media/user@example.com/my clip+v=2.mp4"
    store.put_bytes(key, b"x")
    assert store.get_bytes(key) == b"x"
    assert [i.key for i in store.list("media/")] == [key]


def test_file_round_trip(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(300_000))
    store.put_file("uploads/in.bin", src, content_type="application/octet-stream")
    dest = tmp_path / "out" / "deep" / "copy.bin"
    store.get_file("uploads/in.bin", dest)
    assert dest.read_bytes() == src.read_bytes()
    assert store.size("uploads/in.bin") == 300_000


def test_stream_of_20_mb_round_trips(store: Store, tmp_path: Path) -> None:
    """For S3 the store's multipart threshold is 5 MiB, so this goes up in parts."""
    stream = PatternStream(20 * MiB + 123, os.urandom(MiB + 7))
    written = store.put_stream("big/stream.bin", stream)  # type: ignore[arg-type]
    assert written == 20 * MiB + 123
    assert store.size("big/stream.bin") == written
    out = tmp_path / "stream.bin"
    store.get_file("big/stream.bin", out)
    assert sha_of(out) == stream.sha.hexdigest()


def test_folder_round_trip(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "hls"
    files = {
        "master.m3u8": b"#EXTM3U\n",
        "720p/index.m3u8": b"#EXTM3U\n720",
        "720p/seg_000.m4s": os.urandom(1000),
        "360p/seg_000.m4s": os.urandom(500),
    }
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    keys = store.put_folder("media/42/hls", src)
    assert sorted(keys) == sorted(f"media/42/hls/{rel}" for rel in files)
    store.put_bytes("media/42/hlsx/other", b"not in the folder")

    out = tmp_path / "back"
    got = store.get_folder("media/42/hls", out)
    assert sorted(got) == sorted(keys)
    for rel, data in files.items():
        assert (out / rel).read_bytes() == data
    assert not (out / "other").exists() and not (tmp_path / "back" / "x" / "other").exists()


def test_exists_size_list_delete(store: Store) -> None:
    assert not store.exists("a/1")
    for key, data in [("a/2", b"22"), ("a/1", b"1"), ("a/sub/3", b"333"), ("ab", b"4444"), ("b/5", b"5")]:
        store.put_bytes(key, data)
    assert store.exists("a/1")
    assert store.size("a/sub/3") == 3
    assert store.list("a/") == [ObjectInfo("a/1", 1), ObjectInfo("a/2", 2), ObjectInfo("a/sub/3", 3)]
    assert [i.key for i in store.list("a")] == ["a/1", "a/2", "a/sub/3", "ab"]
    assert [i.key for i in store.list()] == ["a/1", "a/2", "a/sub/3", "ab", "b/5"]
    assert store.list("nothing/") == []

    store.delete("a/1")
    store.delete("a/1")  # idempotent, as S3
    assert not store.exists("a/1")
    assert store.delete_prefix("a/") == 2
    assert [i.key for i in store.list()] == ["ab", "b/5"]
    assert store.delete_prefix("a/") == 0


def test_missing_objects_raise_not_found(store: Store, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        store.get_bytes("nope/x")
    with pytest.raises(NotFound):
        store.size("nope/x")
    with pytest.raises(NotFound):
        store.get_file("nope/x", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_delete_prefix_handles_more_than_one_batch(store: Store) -> None:
    """S3 deletes in batches of 1000; 1005 keys need two calls (and the file store prunes folders)."""
    if isinstance(store, S3Store):
        import ebbtide.storage.s3 as s3mod

        s3mod_batch = s3mod.DELETE_BATCH
        s3mod.DELETE_BATCH = 4  # small batches keep the test fast; the loop is what is checked
    try:
        for i in range(9):
            store.put_bytes(f"many/{i % 3}/{i}", b"x")
        assert store.delete_prefix("many/") == 9
        assert store.list("many/") == []
    finally:
        if isinstance(store, S3Store):
            s3mod.DELETE_BATCH = s3mod_batch
    if isinstance(store, FileStore):
        assert not (store.root / "many").exists()


BAD_KEYS = ["../x", "a/../../etc/passwd", "/abs/path", "a\\b", "a//b", "", "a/", "./a", "a/./b", "a\x00b"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_refused_and_nothing_is_written(store: Store, key: str, tmp_path: Path) -> None:
    calls = [
        lambda: store.put_bytes(key, b"x"),
        lambda: store.put_stream(key, io.BytesIO(b"x")),
        lambda: store.get_bytes(key),
        lambda: store.get_file(key, tmp_path / "out"),
        lambda: store.exists(key),
        lambda: store.size(key),
        lambda: store.delete(key),
        lambda: store.signed_get_url(key, 60),
        lambda: store.signed_put_url(key, 60),
        lambda: store.start_multipart(key),
    ]
    for call in calls:
        with pytest.raises(InvalidKey) as info:
            call()
        assert info.value.message
    assert store.list() == []
    assert not (tmp_path / "out").exists()


def test_bad_prefixes_are_refused(store: Store, tmp_path: Path) -> None:
    for prefix in ["../", "/abs/", "a/../"]:
        with pytest.raises(InvalidKey):
            store.list(prefix)
        with pytest.raises(InvalidKey):
            store.delete_prefix(prefix)
        with pytest.raises(InvalidKey):
            store.put_folder(prefix, tmp_path)
        with pytest.raises(InvalidKey):
            store.get_folder(prefix, tmp_path / "out")
