"""The job queue port and its backends, chosen by the URL scheme in `queue.url`.

Backends are imported lazily so an embedded install never loads boto3, redis or psycopg.
"""

from __future__ import annotations

import math
from urllib.parse import unquote, urlparse

from ebbtide.clock import SYSTEM_CLOCK, Clock
from ebbtide.config.sections import QueueConfig
from ebbtide.errors import ConfigError
from ebbtide.queue.base import DeadLetter, Delivery, Queue, QueueStats

__all__ = ["SCHEMES", "DeadLetter", "Delivery", "Queue", "QueueStats", "open_queue", "sqlite_path"]

SCHEMES = ("sqlite", "sqs", "redis", "rediss", "postgresql", "postgres")


def sqlite_path(url: str) -> str:
    """`sqlite:///rel/path` → `rel/path`, `sqlite:////abs/path` → `/abs/path` (SQLAlchemy's convention)."""
    rest = url[len("sqlite://") :]
    if not rest.startswith("/") or rest == "/":
        raise ConfigError(
            f"queue.url {url!r} has no file path",
            hint="write sqlite:///relative/queue.db or sqlite:////abs/queue.db",
        )
    path = unquote(rest[1:].split("?", 1)[0])
    if path in ("", ":memory:"):
        raise ConfigError(
            f"queue.url {url!r} must name a file", hint="an in-memory queue cannot be shared by workers"
        )
    return path


def open_queue(cfg: QueueConfig, clock: Clock = SYSTEM_CLOCK, accept_foreign: bool = False) -> Queue:
    """Open the backend named by `cfg.url`; an unknown scheme is a ConfigError listing the allowed ones.

    `accept_foreign` (intake mappings configured) lets any JSON object through to the worker; the
    sqlite and sqs backends support it (foreign producers write to SQS)."""
    url = cfg.url
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        from ebbtide.queue.sqlite import SqliteQueue

        return SqliteQueue(
            sqlite_path(url), name=cfg.name, max_receives=cfg.max_receives, clock=clock,
            accept_foreign=accept_foreign,
        )  # fmt: skip
    if scheme == "sqs":
        from ebbtide.queue.sqs import SqsQueue

        name = urlparse(url).netloc or cfg.name
        return SqsQueue(
            name,
            max_receives=cfg.max_receives,
            endpoint_url=cfg.endpoint_url,
            region=cfg.region,
            clock=clock,
            accept_foreign=accept_foreign,
            create_wait=int(cfg.wait),
            create_visibility=math.ceil(cfg.lease),
        )
    if scheme in ("redis", "rediss"):
        from ebbtide.queue.redis import RedisQueue

        return RedisQueue(url, name=cfg.name, max_receives=cfg.max_receives, clock=clock)
    if scheme in ("postgresql", "postgres"):
        from ebbtide.queue.postgres import PostgresQueue

        return PostgresQueue(url, name=cfg.name, max_receives=cfg.max_receives, clock=clock)
    allowed = ", ".join(f"{s}://" for s in SCHEMES)
    raise ConfigError(f"queue.url {url!r} has an unsupported scheme", hint=f"use one of {allowed}")
