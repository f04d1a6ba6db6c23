"""Sources in place: an object already in a user's bucket (moto S3 standing in for Wasabi) is probed
with ranged reads, queued where it is, transcoded and never copied into ebbtide's store."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import boto3
from fastapi.testclient import TestClient
from web_helpers import Account, Env, account, make_settings

from ebbtide.media.samples import generate_clip
from ebbtide.services import open_services
from ebbtide.web.app import create_app


def test_source_in_place_via_api(data_dir: Path, tmp_path: Path, moto_endpoint: str) -> None:
    allowed, private = f"shared-{uuid.uuid4().hex[:8]}", f"private-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    clip = generate_clip(tmp_path / "match.mp4", seconds=6, width=640, height=360)
    for bucket in (allowed, private):
        s3.create_bucket(Bucket=bucket)
        s3.upload_file(str(clip), bucket, "matches/final.mp4")
    s3.put_object(Bucket=allowed, Key="notes.txt", Body=b"not a video at all " * 100)
    settings = make_settings(
        data_dir, sources={"endpoint_url": moto_endpoint, "region": "us-east-1", "allow_buckets": [allowed]},
        media={"rungs": [{"height": 144, "bitrate_kbps": 150}], "segment_seconds": 1, "gop_seconds": 1},
    )  # fmt: skip
    services = open_services(settings)
    with TestClient(create_app(services), base_url="http://127.0.0.1:8000") as client:
        env = Env(services, client, account(services, "alice"), account(services, "bob"),
                  account(services, "root", admin=True))  # fmt: skip

        def post(who: Account, location: str) -> Any:
            return client.post("/api/gallery/sources", headers=who.headers,
                               json={"location": location, "title": "Final"})  # fmt: skip

        assert post(env.alice, f"s3://{private}/matches/final.mp4").status_code == 404
        r = post(env.alice, f"s3://{allowed}/nothing-here.mp4")
        assert r.status_code == 404
        r = post(env.alice, f"s3://{allowed}/notes.txt")
        assert r.status_code == 422 and "not a video" in r.text
        assert post(env.alice, f"s3://{allowed}/../x.mp4").status_code == 404
        assert services.catalog.list_media() == []

        r = post(env.alice, f"s3://{allowed}/matches/final.mp4")
        assert r.status_code == 201, r.text
        r2 = post(env.admin, f"s3://{private}/matches/final.mp4")  # admins may name any bucket
        assert r2.status_code == 201, r2.text
        media = services.catalog.get_media(r.json()["id"])
        assert media.source_key == f"s3://{allowed}/matches/final.mp4"
        assert media.duration and abs(media.duration - 6) < 0.5
        env.run_worker_once()
        v = client.get(f"/api/gallery/videos/{media.id}", headers=env.alice.headers).json()
        assert v["state"] == "complete", v
        # nothing of the source was copied into ebbtide's store
        assert not [i for i in services.store.list("") if i.key.endswith(".mp4") and "/source/" in i.key]
        assert client.delete(f"/api/gallery/videos/{media.id}", headers=env.alice.headers).status_code == 204
        assert s3.head_object(Bucket=allowed, Key="matches/final.mp4")["ContentLength"] == clip.stat().st_size
    services.close()


def test_probe_reads_only_what_it_needs(tmp_path: Path, moto_endpoint: str) -> None:
    from ebbtide.config.sections import SourcesConfig
    from ebbtide.media.probe import probe_stream
    from ebbtide.storage.sources import Sources, parse_location

    bucket = f"big-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    clip = generate_clip(tmp_path / "long.mp4", seconds=20, width=320, height=240)
    s3.upload_file(str(clip), bucket, "long.mp4")
    reader = Sources(SourcesConfig(endpoint_url=moto_endpoint, region="us-east-1")).reader(
        parse_location(f"s3://{bucket}/long.mp4")
    )
    import io

    with io.BufferedReader(reader) as f:
        info = probe_stream(f, "long.mp4", reader.size)
    assert abs(info.duration - 20) < 0.5
    print(f"probe read {reader.bytes_read} of {reader.size} bytes")
    assert reader.bytes_read < reader.size / 2


def test_cli_submit_s3_location(tmp_path: Path, moto_endpoint: str) -> None:
    import json

    from typer.testing import CliRunner

    from ebbtide.cli.main import app

    bucket = f"cli-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    clip = generate_clip(tmp_path / "a.mp4", seconds=1, width=320, height=240)
    s3.upload_file(str(clip), bucket, "in/a.mp4")
    cfg = tmp_path / "ebbtide.yaml"
    sources = {"endpoint_url": moto_endpoint, "region": "us-east-1"}
    cfg.write_text(json.dumps({"data_dir": str(tmp_path / "data"), "sources": sources}))
    base = ["--config", str(cfg), "submit", "--no-follow"]
    out = CliRunner().invoke(app, [*base, f"s3://{bucket}/in/a.mp4"])
    assert out.exit_code == 0, out.output
    assert "queued" in out.output
    out = CliRunner().invoke(app, [*base, f"s3://{bucket}/in/missing.mp4"])  # main() prints it in one line
    assert out.exit_code != 0 and "does not exist" in str(out.exception), out.output
