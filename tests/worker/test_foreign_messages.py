"""Foreign messages and unknown job ids: mapped into jobs or dead-lettered with a reason, never deleted.

Real parts: the embedded SQLite queue and catalog, moto's S3 (server mode, over HTTP) standing in
for the user's own Wasabi bucket, real ffmpeg on a generated clip.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from ebbtide.catalog.states import JobState, MediaState
from ebbtide.media.samples import generate_clip
from ebbtide.worker.foreign import derived_ids
from ebbtide.worker.runtime import Worker


def _mapping(bucket: str) -> dict[str, Any]:
    return {
        "name": "rugbycodex",
        "external_id": "job_id",
        "source": f"s3://{bucket}/{{org_id}}/{{media_id}}.mp4",
        "owner": "coach",
        "title": "match {media_id}",
        "metadata": ["org_id", "media_id"],
    }


def _env(make_env: Callable[..., Any], moto_endpoint: str) -> tuple[Any, Any, str]:
    bucket = f"wasabi-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    _, services, _ = make_env(
        intake={"mappings": [_mapping(bucket)]},
        sources={"endpoint_url": moto_endpoint, "region": "us-east-1"},
    )
    services.catalog.create_user("coach")
    return services, s3, bucket


def _run_once(services: Any) -> None:
    Worker(services, once=True, install_signals=False, idle_exit=2).run()


def test_unknown_job_id_is_dead_lettered_not_deleted(make_env: Callable[..., Any]) -> None:
    _, services, _ = make_env()
    body = {"job_id": "old-system-42", "kind": "transcode", "media_id": "m1"}
    services.queue.send(body)
    _run_once(services)
    (dead,) = services.queue.dead_letters()
    assert json.loads(dead.body) == body
    assert "old-system-42 is not in this catalog" in dead.reason
    assert services.queue.stats().backlog == 0


def test_seed_message_becomes_a_job_once(
    make_env: Callable[..., Any], moto_endpoint: str, tmp_path: Path
) -> None:
    services, s3, bucket = _env(make_env, moto_endpoint)
    clip = generate_clip(tmp_path / "m.mp4", seconds=1, width=320, height=240)
    s3.upload_file(str(clip), bucket, "org-7/media-9.mp4")
    message = {"job_id": "j-100", "media_id": "media-9", "org_id": "org-7"}
    services.queue.send(message)
    _run_once(services)

    job_id, media_id = derived_ids("rugbycodex", "j-100")
    job = services.catalog.get_job(job_id)
    assert job.state == JobState.SUCCEEDED
    assert job.payload["intake"] == {
        "mapping": "rugbycodex",
        "external_id": "j-100",
        "metadata": {"org_id": "org-7", "media_id": "media-9"},
    }
    media = services.catalog.get_media(media_id)
    assert media.state == MediaState.COMPLETE and media.title == "match media-9"
    assert media.source_key == f"s3://{bucket}/org-7/media-9.mp4"
    assert media.master_key and services.store.exists(media.master_key)
    # the user's bucket was only read: the source is still there and nothing was added
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["org-7/media-9.mp4"]

    services.queue.send(message)  # the producer sends it again: same job, acked, no new work
    _run_once(services)
    assert len(services.catalog.list_jobs()) == 1
    assert services.queue.stats().backlog == 0 and services.queue.dead_letters() == []


def test_unmapped_and_missing_object_are_dead_lettered(
    make_env: Callable[..., Any], moto_endpoint: str
) -> None:
    services, _, bucket = _env(make_env, moto_endpoint)
    unmapped = {"jobId": "x", "videoId": "123", "s3Key": "uploads/u/raw.mp4"}  # seed 004's format
    missing = {"job_id": "j-1", "media_id": "nope", "org_id": "org-1"}
    unsafe = {"job_id": "j-2", "media_id": "../../etc", "org_id": "org-1"}
    for body in (unmapped, missing, unsafe):
        services.queue.send(body)
    for _ in range(3):
        _run_once(services)
    dead = {d.body: d.reason for d in services.queue.dead_letters()}
    assert len(dead) == 3
    assert (
        "matches no intake mapping: rugbycodex needs job_id, org_id, media_id"
        in dead[json.dumps(unmapped, separators=(",", ":"))]
    )
    assert f"s3://{bucket}/org-1/nope.mp4 does not exist" in dead[json.dumps(missing, separators=(",", ":"))]
    assert "unsafe value in media_id" in dead[json.dumps(unsafe, separators=(",", ":"))]
    assert services.queue.stats().backlog == 0
    assert services.catalog.list_jobs() == []
