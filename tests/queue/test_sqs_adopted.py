"""An existing SQS queue, as the user built it with the AWS CLI (seed 001's names), against moto.

The live RedrivePolicy wins: its DLQ (with its own name) is where `queue stats`, `dlq list` and
`dlq redrive` look, and `doctor` reports that its maxReceiveCount differs from the config. Queues
ebbtide creates long-poll for 20 s; an idle worker's receives each wait the configured time.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from ebbtide.cli.context import console
from ebbtide.cli.main import app
from ebbtide.config import load_settings
from ebbtide.queue import open_queue
from ebbtide.services import open_services
from ebbtide.worker.runtime import Worker

AWS = str(Path(sys.executable).parent / "aws")


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "width", 200)


def aws(endpoint: str, *args: str) -> Any:
    """The AWS CLI the seed's users run, pointed at moto."""
    out = subprocess.run(
        [AWS, "--endpoint-url", endpoint, "--region", "us-east-1", "--output", "json", *args],
        capture_output=True, text=True, timeout=60, env=dict(os.environ), check=True,
    )  # fmt: skip
    return json.loads(out.stdout) if out.stdout.strip() else None


def seed_001_queues(endpoint: str, suffix: str) -> tuple[str, str]:
    """`rugbycodex-transcode-jobs` (visibility 600, 20 s polling) dead-lettering to a DLQ of its own name."""
    name, dlq = f"rugbycodex-transcode-jobs-{suffix}", f"rugbycodex-failed-{suffix}"
    dlq_url = aws(endpoint, "sqs", "create-queue", "--queue-name", dlq)["QueueUrl"]
    arn = aws(endpoint, "sqs", "get-queue-attributes", "--queue-url", dlq_url,
              "--attribute-names", "QueueArn")  # fmt: skip
    redrive = json.dumps({"deadLetterTargetArn": arn["Attributes"]["QueueArn"], "maxReceiveCount": "3"})
    attrs = json.dumps({"VisibilityTimeout": "600", "MessageRetentionPeriod": "345600",
                        "ReceiveMessageWaitTimeSeconds": "20", "RedrivePolicy": redrive})  # fmt: skip
    aws(endpoint, "sqs", "create-queue", "--queue-name", name, "--attributes", attrs)
    return name, dlq


def _config(tmp_path: Path, endpoint: str, name: str, **queue: Any) -> str:
    cfg = tmp_path / "ebbtide.yaml"
    q = {"url": f"sqs://{name}", "endpoint_url": endpoint, "region": "us-east-1", "max_receives": 5, **queue}
    cfg.write_text(json.dumps({"data_dir": str(tmp_path / "data"), "queue": q}))
    return str(cfg)


def test_stranded_job_shows_in_the_real_dlq_and_doctor_flags_it(tmp_path: Path, moto_endpoint: str) -> None:
    name, dlq = seed_001_queues(moto_endpoint, uuid.uuid4().hex[:6])
    cfg = _config(tmp_path, moto_endpoint, name)
    q = open_queue(load_settings(cfg, env={}).queue)
    assert q.max_receives == 3  # the live limit, not the configured 5
    assert q.dlq_url.endswith("/" + dlq)  # type: ignore[attr-defined]
    queues = aws(moto_endpoint, "sqs", "list-queues", "--queue-name-prefix", name)["QueueUrls"]
    assert queues == [q.url]  # type: ignore[attr-defined]  # no "<name>-dlq" was invented

    # The stranding: a message received three times by workers that died; SQS moves it itself.
    aws(moto_endpoint, "sqs", "send-message", "--queue-url", q.url,  # type: ignore[attr-defined]
        "--message-body", json.dumps({"job_id": "j-1", "kind": "transcode"}))  # fmt: skip
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    for _ in range(3):
        got = sqs.receive_message(QueueUrl=q.url, VisibilityTimeout=0, WaitTimeSeconds=1)  # type: ignore[attr-defined]
        assert len(got.get("Messages", [])) == 1
    assert q.receive(wait=1, lease=5) == []  # SQS moved it to the user's DLQ on this receive
    assert q.stats().dead == 1 and q.stats().backlog == 0
    runner = CliRunner()
    out = runner.invoke(app, ["--config", cfg, "queue", "stats"])
    assert out.exit_code == 0 and "│    1 │" in out.output, out.output
    out = runner.invoke(app, ["--config", cfg, "dlq", "list"])
    assert out.exit_code == 0 and "j-1" in out.output and "3" in out.output, out.output

    for args in (["doctor"], ["doctor", "--aws", "--queue-url", q.url, "--endpoint-url", moto_endpoint]):  # type: ignore[attr-defined]
        out = runner.invoke(app, ["--config", cfg, *args])
        assert out.exit_code == 1, out.output
        assert "dead-letters after 3 receives" in out.output and "queue.max_receives is 5" in out.output
    fixed = _config(tmp_path, moto_endpoint, name, max_receives=3)
    out = runner.invoke(app, ["--config", fixed, "doctor"])
    assert "dead-letters after" not in out.output, out.output

    out = runner.invoke(app, ["--config", cfg, "dlq", "redrive"])
    assert out.exit_code == 0, out.output
    assert q.stats().dead == 0 and q.stats().visible == 1
    q.close()


def test_created_queue_long_polls_and_idle_worker_waits_whole(tmp_path: Path, moto_endpoint: str) -> None:
    name = f"ebb-{uuid.uuid4().hex[:8]}"
    cfg = _config(tmp_path, moto_endpoint, name, wait=3, lease=90, max_receives=4)
    settings = load_settings(cfg, env={}, overrides={"worker": {"lease": 90, "spot_watch": "off",
                                                                  "ecs_protection": "off"}})  # fmt: skip
    services = open_services(settings)
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ReceiveMessageWaitTimeSeconds"] == "3"
    assert attrs["VisibilityTimeout"] == "90"
    assert json.loads(attrs["RedrivePolicy"])["maxReceiveCount"] in (4, "4")

    calls: list[tuple[int, float]] = []
    client = services.queue.client  # type: ignore[attr-defined]

    def count(params: dict[str, Any], **_: Any) -> None:
        if params["QueueUrl"] == url:  # not the DLQ sweep at worker start
            calls.append((int(params.get("WaitTimeSeconds", -1)), time.monotonic()))

    client.meta.events.register("before-parameter-build.sqs.ReceiveMessage", count)
    t0 = time.monotonic()
    Worker(services, idle_exit=7.5, install_signals=False).run()
    elapsed = time.monotonic() - t0
    waits = [w for w, _ in calls]
    print("receive waits:", waits, "elapsed", round(elapsed, 2))
    assert len(calls) <= 3, waits  # 7.5 s idle at 3 s a poll: three receives, not one per second
    assert waits[:2] == [3, 3], waits
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(calls)]
    assert all(g >= 2.8 for g in gaps), gaps  # moto really held each empty receive for the wait
    services.close()
