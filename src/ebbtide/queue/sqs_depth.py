"""Read-only depth of an SQS queue another program owns (seed 000's `rugbycodex-transcode-jobs`).

Only `GetQueueUrl` and `GetQueueAttributes` are called: visible, in flight and delayed come from
the queue's approximate counts; dead is the depth of the DLQ its live RedrivePolicy names, if any.
SQS gives no oldest-message age here (that is CloudWatch's `ApproximateAgeOfOldestMessage`).
"""

from __future__ import annotations

import json
import os
from typing import Any

from ebbtide.errors import BackendUnavailable, ConfigError
from ebbtide.queue.base import QueueStats

# every call made here; deploy/iam.py scopes them to the queue for `ebbtide aws plan`
ACTIONS = ("sqs:GetQueueUrl", "sqs:GetQueueAttributes")

_COUNTS = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "RedrivePolicy",
]


class SqsDepth:
    def __init__(
        self, name: str, region: str | None = None, endpoint_url: str | None = None, client: Any = None
    ) -> None:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        self._errors = (BotoCoreError, ClientError)
        self.name = name
        self.client = client or boto3.client(
            "sqs", endpoint_url=endpoint_url, region_name=region or os.environ.get("AWS_DEFAULT_REGION")
        )
        try:
            self.url = str(self.client.get_queue_url(QueueName=name)["QueueUrl"])
        except ClientError as e:
            raise ConfigError(
                f"SQS queue {name!r} cannot be read: {e}",
                hint="a depth source is never created; check the name, region and sqs:GetQueueUrl rights",
            ) from None
        self._dlq_url: str | None = None

    def _attrs(self, url: str) -> dict[str, str]:
        try:
            return dict(self.client.get_queue_attributes(QueueUrl=url, AttributeNames=_COUNTS)["Attributes"])
        except self._errors as e:
            raise BackendUnavailable(f"cannot read SQS queue {self.name!r}: {e}") from None

    def stats(self) -> QueueStats:
        a = self._attrs(self.url)
        dead = 0
        policy = a.get("RedrivePolicy")
        if policy:
            if self._dlq_url is None:
                dlq_name = str(json.loads(policy)["deadLetterTargetArn"]).rsplit(":", 1)[-1]
                self._dlq_url = str(self.client.get_queue_url(QueueName=dlq_name)["QueueUrl"])
            dead = int(self._attrs(self._dlq_url).get("ApproximateNumberOfMessages", 0))
        return QueueStats(
            visible=int(a.get("ApproximateNumberOfMessages", 0)),
            in_flight=int(a.get("ApproximateNumberOfMessagesNotVisible", 0)),
            delayed=int(a.get("ApproximateNumberOfMessagesDelayed", 0)),
            dead=dead,
            oldest_age=None,
        )

    def close(self) -> None:
        return None
