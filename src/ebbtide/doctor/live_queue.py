"""The live SQS queue the config names, against the config: the receive limit SQS really applies.

`check_queue_policy` is pure; `read_configured_queue` does the one read (boto3, at the edge). Both
`doctor` modes use them: the config mode reads the queue `queue.url` names, the `--aws` mode the
queue it was given, when the config names that same queue.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from ebbtide.config import Settings
from ebbtide.doctor.checks import Finding
from ebbtide.queue.sqs import SqsPolicy


def configured_sqs_name(s: Settings) -> str | None:
    url = urlparse(s.queue.url)
    return (url.netloc or s.queue.name) if url.scheme == "sqs" else None


def check_queue_policy(s: Settings, name: str, policy: SqsPolicy) -> list[Finding]:
    out = []
    if policy.dlq_name and policy.max_receive_count != s.queue.max_receives:
        out.append(
            Finding(
                "queue-limit-mismatch",
                "error",
                f"SQS queue {name} dead-letters after {policy.max_receive_count} receives "
                f"(to {policy.dlq_name}); queue.max_receives is {s.queue.max_receives}",
                "SQS applies its own limit: a job moves to the DLQ on a receive the config does not "
                "expect to be the last, so it never gets its final verdict in the catalog",
                f"set queue.max_receives: {policy.max_receive_count}, or change the queue's RedrivePolicy",
            )
        )
    if policy.dlq_name is None:
        out.append(
            Finding(
                "queue-no-dlq",
                "warning",
                f"SQS queue {name} has no RedrivePolicy",
                f"ebbtide will add one to a new DLQ named {name}-dlq when it opens the queue",
                "add the redrive policy yourself if another system also reads this queue",
            )
        )
    return out


def read_configured_queue(s: Settings, client: Any = None) -> tuple[str, SqsPolicy] | None:
    """(name, live policy) of the SQS queue the config names; None if it names none or it is absent."""
    import boto3
    from botocore.exceptions import ClientError

    from ebbtide.queue.sqs import read_policy

    name = configured_sqs_name(s)
    if name is None:
        return None
    sqs = client or boto3.client(
        "sqs", endpoint_url=s.queue.endpoint_url, region_name=s.queue.region or s.aws.region
    )
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError:
        return None  # not created yet: ebbtide creates it with a matching policy
    return name, read_policy(sqs, url)
