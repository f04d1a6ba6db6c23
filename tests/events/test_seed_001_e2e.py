"""Seed 001 adopted as it runs: its SQS queue and DLQ (own name, maxReceiveCount 3) made with the
AWS CLI in moto, a bucket standing in for Wasabi with a match in it, the Supabase function's exact
message, and the example receiver moving seed 001's `jobs` and `media_assets` rows in a fresh
PostgreSQL database. Real parts throughout: moto server, ffmpeg, PostgreSQL, HTTP webhooks.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest

from ebbtide.config import load_settings
from ebbtide.events.sender import Sender
from ebbtide.media.samples import generate_clip
from ebbtide.services import open_services
from ebbtide.worker.runtime import Worker

ROOT = Path(__file__).resolve().parents[2]
AWS = str(Path(sys.executable).parent / "aws")
SECRET = "whsec-rugbycodex"


def aws(endpoint: str, *args: str) -> Any:
    """The AWS CLI seed 001's users run, pointed at moto (JSON answers parsed, s3's text kept)."""
    cmd = [AWS, "--endpoint-url", endpoint, "--region", "us-east-1", "--output", "json", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=dict(os.environ), check=True)
    return json.loads(out.stdout) if out.stdout.strip().startswith("{") else out.stdout


def receiver_module() -> Any:
    path = ROOT / "examples/webhooks/seed001_receiver.py"
    spec = importlib.util.spec_from_file_location("seed001_receiver", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.timeout(900)  # 250 s measured at load 37 on 2 cores: close to the default 300 s
def test_seed_001_end_to_end(tmp_path: Path, moto_endpoint: str, pg_url: str) -> None:
    sfx = uuid.uuid4().hex[:6]
    queue, dlq, wasabi, store = (f"rugbycodex-transcode-jobs-{sfx}", f"rugbycodex-transcode-dead-{sfx}",
                                 f"rugbycodex-wasabi-{sfx}", f"ebbtide-hls-{sfx}")  # fmt: skip
    # -- seed 001's AWS side, as its users built it
    dlq_url = aws(moto_endpoint, "sqs", "create-queue", "--queue-name", dlq)["QueueUrl"]
    arn = aws(moto_endpoint, "sqs", "get-queue-attributes", "--queue-url", dlq_url,
              "--attribute-names", "QueueArn")["Attributes"]["QueueArn"]  # fmt: skip
    attrs = {"VisibilityTimeout": "600", "MessageRetentionPeriod": "345600",
             "ReceiveMessageWaitTimeSeconds": "20",
             "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "3"})}  # fmt: skip
    queue_url = aws(moto_endpoint, "sqs", "create-queue", "--queue-name", queue,
                    "--attributes", json.dumps(attrs))["QueueUrl"]  # fmt: skip
    aws(moto_endpoint, "s3", "mb", f"s3://{wasabi}")
    clip = generate_clip(tmp_path / "match.mp4", seconds=2, width=320, height=240)
    aws(moto_endpoint, "s3", "cp", str(clip), f"s3://{wasabi}/org-42/media-7.mp4")

    # -- seed 001's database: its function inserted the rows before sending the message
    db = pg_url.replace("postgresql+psycopg://", "postgresql://")
    receiver = receiver_module()
    server = receiver.make_server(db, SECRET, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("INSERT INTO media_assets (id, org_id) VALUES ('media-7', 'org-42')")
        conn.execute("INSERT INTO jobs (id, media_id, org_id) VALUES ('job-3', 'media-7', 'org-42')")

    # -- ebbtide adopts all of it
    cfg = tmp_path / "ebbtide.yaml"
    cfg.write_text(json.dumps({
        "data_dir": str(tmp_path / "data"),
        "queue": {"url": f"sqs://{queue}", "endpoint_url": moto_endpoint, "region": "us-east-1",
                  "wait": 1, "max_receives": 3},
        "store": {"url": f"s3://{store}", "endpoint_url": moto_endpoint, "region": "us-east-1"},
        "sources": {"endpoint_url": moto_endpoint, "region": "us-east-1"},
        "intake": {"mappings": [{"name": "rugbycodex", "external_id": "job_id", "owner": "rugbycodex",
                                 "source": f"s3://{wasabi}/{{org_id}}/{{media_id}}.mp4",
                                 "title": "{media_id}", "metadata": ["media_id", "org_id"]}]},
        "events": {"webhook_urls": [f"http://127.0.0.1:{server.server_address[1]}/ebbtide"],
                   "secret": SECRET},
        "media": {"rungs": [{"height": 144, "bitrate_kbps": 150}], "segment_seconds": 1, "gop_seconds": 1},
        "worker": {"lease": 30, "spot_watch": "off", "ecs_protection": "off"},
    }))  # fmt: skip
    services = open_services(load_settings(cfg, env={}))
    services.catalog.create_user("rugbycodex")
    sender = Sender(services.catalog, services.settings.events)  # type: ignore[arg-type]
    sending = threading.Thread(target=sender.run, args=(0.1,), daemon=True)
    sending.start()
    try:
        # the Supabase function's exact message
        body = json.dumps({"job_id": "job-3", "media_id": "media-7", "org_id": "org-42"})
        aws(moto_endpoint, "sqs", "send-message", "--queue-url", queue_url, "--message-body", body)
        assert Worker(services, once=True, idle_exit=20, install_signals=False).run() == 0
        deadline = time.monotonic() + 30
        while sender.pending() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sender.pending() == 0
    finally:
        sender.stop()
        sending.join(5)
        server.shutdown()

    with psycopg.connect(db) as conn:
        log = conn.execute("SELECT table_name, row_id, state FROM state_log ORDER BY seq").fetchall()
        url = conn.execute("SELECT streaming_url FROM media_assets WHERE id = 'media-7'").fetchone()
    assert [s for t, r, s in log if t == "jobs" and r == "job-3"] == ["queued", "running", "succeeded"]
    assert [s for t, r, s in log if t == "media_assets" and r == "media-7"] == [
        "uploaded", "transcoding", "transcoded", "complete"]  # fmt: skip
    assert url and url[0] and url[0].endswith("master.m3u8")

    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    head = s3.head_object(Bucket=store, Key=url[0])
    assert head["ContentType"] == "application/vnd.apple.mpegurl"
    assert "max-age" in head.get("CacheControl", "")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=store)["Contents"]]
    segs = [k for k in keys if k.endswith((".m4s", ".ts"))]
    assert segs and s3.head_object(Bucket=store, Key=segs[0])["ContentType"] in ("video/mp4", "video/mp2t")
    jpg = [k for k in keys if k.endswith(".jpg")]
    assert jpg and s3.head_object(Bucket=store, Key=jpg[0])["ContentType"] == "image/jpeg"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=wasabi)["Contents"]] == ["org-42/media-7.mp4"]

    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    for u in (queue_url, dlq_url):
        a = sqs.get_queue_attributes(QueueUrl=u, AttributeNames=["All"])["Attributes"]
        left = int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])
        assert left == 0, u
    services.close()
