"""Stand-in for seed 000's worker container (`aws_workers/transcoding/worker.py`), one per ECS task.

It behaves like the seed's worker as it runs: short polling (WaitTimeSeconds 0) on the queue,
one message at a time with the seed's visibility timeout, then it holds the message while it
"transcodes" and deletes it. Bodies are the seed's own (`job_id`, `media_id`, `org_id`); the job's
media length, which the real worker learns by downloading the video, comes from JOBS_FILE (job id →
media seconds), and the hold is that length / 6x realtime, scaled by WORK_SCALE. No ffmpeg: the
test is about who stops the container, not what it computes. It never heartbeats to ebbtide.
Every step goes to EVENT_LOG as one JSON line; SIGTERM while holding a message (ECS stopping the
task mid-job) is logged as `killed` before the process exits.

With PROTECT_SELF=1 it also does what a worker that manages its own task scale-in protection does
(ECS agent endpoint `PUT $ECS_AGENT_URI/task-protection/v1/state`, which calls
UpdateTaskProtection for its task): protection on before the job, off after it. Here it calls
UpdateTaskProtection itself, since there is no ECS agent.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

import boto3

SPEED = 6.0  # g4dn.xlarge: media seconds per wall second (sim/fleets.py)
env = os.environ
sqs = boto3.client("sqs", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"])
ecs = boto3.client("ecs", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"])
TASK = env["TASK_ARN"]
holding: dict[str, Any] = {}


def event(kind: str, **kw: Any) -> None:
    line = json.dumps({"event": kind, "task": TASK, "t": time.time(), **kw})
    with open(env["EVENT_LOG"], "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def protect(on: bool) -> None:
    if env.get("PROTECT_SELF") == "1":
        ecs.update_task_protection(cluster=env["ECS_CLUSTER"], tasks=[TASK], protectionEnabled=on,
                                   **({"expiresInMinutes": 60} if on else {}))


def on_term(signum: int, frame: object) -> None:
    if holding:
        event("killed", job_id=holding["job_id"])
    else:
        event("exited")
    sys.exit(1 if holding else 0)


signal.signal(signal.SIGTERM, on_term)
event("up")
while True:
    got = sqs.receive_message(QueueUrl=env["QUEUE_URL"], MaxNumberOfMessages=1, WaitTimeSeconds=0,
                              VisibilityTimeout=int(env["VISIBILITY_TIMEOUT"]),
                              AttributeNames=["ApproximateReceiveCount"])
    msgs = got.get("Messages", [])
    if not msgs:
        time.sleep(0.2)  # short polling
        continue
    msg = msgs[0]
    body = json.loads(msg["Body"])
    holding.update(job_id=body["job_id"])
    protect(True)
    event("received", job_id=body["job_id"],
          receive_count=msg.get("Attributes", {}).get("ApproximateReceiveCount"))
    with open(env["JOBS_FILE"]) as f:
        media_seconds = float(json.load(f)[body["job_id"]])
    time.sleep(media_seconds / SPEED * float(env["WORK_SCALE"]))
    sqs.delete_message(QueueUrl=env["QUEUE_URL"], ReceiptHandle=msg["ReceiptHandle"])
    holding.clear()
    event("deleted", job_id=body["job_id"])
    protect(False)
