"""Depth sources: the queue the fleet scales on when ebbtide's own workers do not consume it.

`fleet.depth_source` names one by URL; nothing is ever written to it (no queue or DLQ is created,
no policy changed), so pointing ebbtide at a running system is safe.

- `bullmq://host:port/db/queue[?prefix=bull]` — a Node.js BullMQ queue (`queue/bullmq.py`).
- `sqs://NAME` — an SQS queue read through `GetQueueAttributes` (`queue/sqs_depth.py`); region and
  endpoint come from `aws.region` / `aws.endpoint_url`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ebbtide.clock import SYSTEM_CLOCK, Clock
from ebbtide.config.sections import DEPTH_SCHEMES
from ebbtide.errors import ConfigError
from ebbtide.queue.base import DepthSource

__all__ = ["DEPTH_SCHEMES", "check_depth_url", "open_depth_source"]


def check_depth_url(url: str) -> str:
    """Validate the URL's form without connecting (used by the config schema)."""
    scheme = urlsplit(url).scheme
    if scheme == "bullmq":
        from ebbtide.queue.bullmq import parse_bullmq_url

        parse_bullmq_url(url)
    elif scheme == "sqs":
        if not urlsplit(url).netloc:
            raise ConfigError(f"{url!r} names no queue", hint="sqs://my-queue-name")
    else:
        raise ConfigError(
            f"{url!r} is not a depth source", hint="use bullmq://host:port/db/queue or sqs://queue-name"
        )
    return url


def open_depth_source(
    url: str,
    clock: Clock = SYSTEM_CLOCK,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> DepthSource:
    check_depth_url(url)
    parts = urlsplit(url)
    if parts.scheme == "bullmq":
        from ebbtide.queue.bullmq import BullMQDepth

        return BullMQDepth.from_url(url, clock=clock)
    from ebbtide.queue.sqs_depth import SqsDepth

    return SqsDepth(parts.netloc, region=region, endpoint_url=endpoint_url)
