"""The split's probe of a source in the store: a presigned URL (moto S3 in server mode, over HTTP)
read by ranges in the capped child, only what the demuxer asks for, with the same allowlist."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import boto3
import pytest

from ebbtide.media.errors import MediaError
from ebbtide.media.isolated import probe_isolated
from ebbtide.media.probe import probe_stream
from ebbtide.media.samples import generate_clip
from ebbtide.storage.sources import UrlRangeReader


def _url(s3: object, bucket: str, key: str) -> str:
    return str(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=600))  # type: ignore[attr-defined]


def test_a_url_is_probed_by_ranges_in_the_capped_child(tmp_path: Path, moto_endpoint: str) -> None:
    bucket = f"store-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    clip = generate_clip(tmp_path / "match.mp4", seconds=90, width=640, height=360)
    s3.upload_file(str(clip), bucket, "src/match.mp4")
    s3.put_object(Bucket=bucket, Key="src/notes.mp4", Body=b"not a video at all " * 5000)
    url = _url(s3, bucket, "src/match.mp4")

    info = probe_isolated(url)  # the child reads the URL from stdin, by ranges
    assert info.duration == pytest.approx(90, abs=0.5) and (info.width, info.height) == (640, 360)

    # the same reader in-process, to count what the probe fetched (measured: 365 KB of 20.8 MB)
    reader = UrlRangeReader(url)
    assert reader.size == clip.stat().st_size
    with io.BufferedReader(reader, buffer_size=64 * 1024) as stream:
        assert probe_stream(stream, "match.mp4", reader.size).duration == pytest.approx(info.duration)
    assert reader.bytes_read < 0.05 * reader.size, (reader.bytes_read, reader.size)

    # hostile or missing input fails with the probe's own errors, as for a local file
    with pytest.raises(MediaError, match="not a video file"):
        probe_isolated(_url(s3, bucket, "src/notes.mp4"))
    with pytest.raises(MediaError, match="could not be read"):
        probe_isolated(_url(s3, bucket, "src/absent.mp4"))
