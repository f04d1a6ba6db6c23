"""Amazon SQS (or any SQS-compatible endpoint) as the job queue, through boto3.

Opening adopts an existing queue as it is: its live RedrivePolicy names the DLQ (any name) and the
receive limit, which win over `queue.max_receives` (`doctor` reports the mismatch). A missing queue
is created with `<name>-dlq`, a RedrivePolicy (maxReceiveCount = max_receives), 20 s long polling
and a visibility timeout of the lease, so SQS itself moves a message that keeps failing. Receives
long-poll with WaitTimeSeconds and lease with VisibilityTimeout; SQS counts whole seconds, so
leases, waits and delays are rounded up.

Stale acks, per backend (a consumer whose lease lapsed and whose message another consumer
re-leased, then acks with its old receipt):
- sqlite, redis, postgres: every lease has its own receipt; a stale ack/extend/release returns
  False and changes nothing.
- sqs: AWS documents that deleting with an older receipt handle "succeeds, but the message
  might not be deleted" — i.e. unreliable either way. moto (the test server) deletes it. This
  backend cannot tell and returns True. The guard is the catalog's completion ledger: the first
  finished attempt wins, so a redelivered job that finds itself already done just acks.

What SQS cannot do, stated rather than faked:
- `stats().oldest_age` is None: SQS exposes ApproximateAgeOfOldestMessage only via CloudWatch.
- `send(dedup_id=…)` on a standard queue is de-duplicated within this process only (5 min);
  standard queues have no server-side de-duplication.
- a stale `extend`/`release` may likewise succeed on SQS (moto accepts any receipt the message
  ever had); only the lease holder's own heartbeat should call them.
- `dead_letters()` has to receive from the DLQ to look; it hides what it saw for a moment and
  makes it visible again at once, so two operators listing at the same instant may each see part.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from ebbtide.clock import SYSTEM_CLOCK, Clock
from ebbtide.errors import BackendUnavailable, ConfigError, EbbtideError
from ebbtide.outage import Outage
from ebbtide.queue.base import (
    REQUIRED_FIELDS,
    BadMessage,
    DeadLetter,
    Delivery,
    QueueStats,
    decode_body,
    encode_body,
)
from ebbtide.queue.sqlite import DEDUP_WINDOW, exhausted_reason

log = logging.getLogger(__name__)

MAX_WAIT = 20  # SQS's long-poll ceiling
MAX_DELAY = 900
BATCH = 10  # SQS's per-call ceiling
_STALE_CODES = {
    "ReceiptHandleIsInvalid",
    "AWS.SimpleQueueService.ReceiptHandleIsInvalid",
    "InvalidParameterValue",
    "MessageNotInflight",
    "AWS.SimpleQueueService.MessageNotInflight",
}
_MISSING_CODES = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
_SYSTEM_ATTRS = ["ApproximateReceiveCount", "SentTimestamp"]
# The IAM actions producers, workers and the scaler need on the queue and its DLQ (batch calls use
# the same actions); ebbtide.deploy writes the roles from this. Creating the queues, or adding a
# missing redrive policy, needs sqs:CreateQueue / sqs:SetQueueAttributes too: the stack does that.
ACTIONS = ("sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:SendMessage", "sqs:ReceiveMessage",
           "sqs:DeleteMessage", "sqs:ChangeMessageVisibility")
# the endpoint did not answer (refused, timed out, closed mid-reply): declared by type
_DRIVER_DOWN = (BotoConnectionError, HTTPClientError)
# the endpoint answered that it is overloaded or broken for now
_SERVER_CODES = {"ServiceUnavailable", "InternalError", "InternalFailure", "ThrottlingException",
                 "RequestThrottled", "AWS.SimpleQueueService.ServiceUnavailable"}
_F = TypeVar("_F", bound=Callable[..., Any])


def _guarded(fn: _F) -> _F:
    @functools.wraps(fn)
    def wrapper(self: SqsQueue, *args: Any, **kwargs: Any) -> Any:
        with self._guard():
            return fn(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class SqsPolicy:
    """What the live queue says, as SQS will act on it (not what the config assumed)."""

    dlq_name: str | None
    max_receive_count: int
    visibility: int
    wait: int


def read_policy(client: Any, url: str) -> SqsPolicy:
    attrs = client.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["RedrivePolicy", "VisibilityTimeout", "ReceiveMessageWaitTimeSeconds"],
    ).get("Attributes", {})
    redrive = json.loads(attrs.get("RedrivePolicy") or "{}")
    arn = str(redrive.get("deadLetterTargetArn") or "")
    return SqsPolicy(
        dlq_name=arn.rsplit(":", 1)[-1] if arn else None,
        max_receive_count=int(redrive.get("maxReceiveCount") or 0),
        visibility=int(attrs.get("VisibilityTimeout") or 30),
        wait=int(attrs.get("ReceiveMessageWaitTimeSeconds") or 0),
    )


def _seconds(value: float) -> int:
    return max(0, math.ceil(value))


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


class SqsQueue:
    def __init__(
        self,
        name: str,
        max_receives: int = 5,
        endpoint_url: str | None = None,
        region: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        client: Any = None,
        accept_foreign: bool = False,
        create_wait: int = 20,
        create_visibility: int = 600,
    ) -> None:
        if len(name) > 76:
            raise ConfigError(
                f"SQS queue name {name!r} is too long", hint="at most 76 characters (80 with -dlq)"
            )
        self.name = name
        self.max_receives = max_receives
        self.clock = clock
        self.client = client or boto3.client(
            "sqs",
            endpoint_url=endpoint_url,
            region_name=region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            # fail over to our own backoff quickly instead of botocore's long retry ladder
            config=Config(connect_timeout=5, retries={"max_attempts": 2, "mode": "standard"}),
        )
        self.outage = Outage(
            "queue", f"sqs {name}", hint="check the SQS endpoint, queue.region and AWS credentials"
        )
        self._dedup: dict[str, tuple[str, float]] = {}
        self._dedup_lock = threading.Lock()
        self.required: tuple[str, ...] = () if accept_foreign else REQUIRED_FIELDS
        self.configured_max_receives = max_receives
        try:
            self._create_wait, self._create_visibility = create_wait, create_visibility
            self._reopen()
        except _DRIVER_DOWN as e:
            raise BackendUnavailable(
                f"cannot reach SQS for queue {name!r}: {e}",
                hint="check queue.endpoint_url and the network", part="queue",
            ) from None
        except (BotoCoreError, ClientError) as e:
            raise EbbtideError(
                f"cannot open SQS queue {name!r}: {e}",
                hint="check AWS credentials (env, profile or role), queue.region and queue.endpoint_url",
            ) from None
        if self.policy.max_receive_count != max_receives:
            log.warning(
                "the queue's live maxReceiveCount differs from queue.max_receives; using the live one",
                extra={"queue": name, "live": self.policy.max_receive_count, "configured": max_receives},
            )
        self.max_receives = self.policy.max_receive_count

    def _open(self, name: str, max_receives: int, wait: int, visibility: int) -> tuple[str, str, SqsPolicy]:
        """Adopt an existing queue as it is (its DLQ, limit, visibility and wait); create what is missing.

        A queue with a RedrivePolicy keeps it: its DLQ (whatever its name) is the dead letters'
        place and its maxReceiveCount the limit. Only a queue without one gets `<name>-dlq`."""
        url = self._url(name)
        if url is not None:
            policy = read_policy(self.client, url)
            if policy.dlq_name:
                dlq_url = self._url(policy.dlq_name)
                if dlq_url is None:
                    raise EbbtideError(
                        f"SQS queue {name!r} dead-letters to {policy.dlq_name!r}, which does not exist",
                        hint="create that DLQ or fix the queue's RedrivePolicy",
                    )
                return url, dlq_url, policy
        dlq_url = self._url(f"{name}-dlq") or self._create(
            f"{name}-dlq", {"MessageRetentionPeriod": "1209600"}
        )
        dlq_arn = self.client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)})
        if url is None:
            url = self._create(name, {
                "RedrivePolicy": redrive,
                "ReceiveMessageWaitTimeSeconds": str(min(MAX_WAIT, max(0, wait))),
                "VisibilityTimeout": str(min(43200, max(0, visibility))),
            })  # fmt: skip
        else:
            self.client.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": redrive})
            log.info("added a redrive policy to SQS queue", extra={"queue": name})
        return url, dlq_url, read_policy(self.client, url)

    def _reopen(self) -> None:
        self.url, self.dlq_url, self.policy = self._open(
            self.name, self.configured_max_receives, self._create_wait, self._create_visibility
        )

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Endpoint errors → BackendUnavailable. A queue that vanished (an SQS-compatible server
        restarted empty, or someone deleted it) is created again, and the call reported as failed
        so the caller retries it; the catalog reconciler re-sends the jobs its messages held."""
        with self.outage.guard(_DRIVER_DOWN):
            try:
                yield
            except ClientError as e:
                code = _code(e)
                if code in _MISSING_CODES:
                    log.warning("SQS queue vanished; creating it again", extra={"queue": self.name})
                    self._reopen()
                    raise self.outage.failed(e) from e
                if code in _SERVER_CODES:
                    raise self.outage.failed(e) from e
                raise

    def _url(self, name: str) -> str | None:
        try:
            return str(self.client.get_queue_url(QueueName=name)["QueueUrl"])
        except ClientError as e:
            if _code(e) not in _MISSING_CODES:
                raise
            return None

    def _create(self, name: str, attributes: dict[str, str]) -> str:
        url = str(self.client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
        log.info("created SQS queue", extra={"queue": name})
        return url

    # -- producer -------------------------------------------------------------------------------

    @_guarded
    def send(self, body: Mapping[str, Any] | str, delay: float = 0, dedup_id: str | None = None) -> str:
        if delay > MAX_DELAY:
            raise EbbtideError(
                f"SQS delays are at most {MAX_DELAY} s, got {delay}", hint="release later instead"
            )
        now = self.clock.now()
        if dedup_id is not None:
            with self._dedup_lock:
                self._dedup = {k: v for k, v in self._dedup.items() if v[1] > now - DEDUP_WINDOW}
                if dedup_id in self._dedup:
                    return self._dedup[dedup_id][0]
        resp = self.client.send_message(
            QueueUrl=self.url, MessageBody=encode_body(body), DelaySeconds=_seconds(delay)
        )
        message_id = str(resp["MessageId"])
        if dedup_id is not None:
            with self._dedup_lock:
                self._dedup.setdefault(dedup_id, (message_id, now))
                message_id = self._dedup[dedup_id][0]
        return message_id

    # -- consumer -------------------------------------------------------------------------------

    @_guarded
    def receive(self, wait: float = 0, lease: float = 120, max_messages: int = 1) -> list[Delivery]:
        deadline = self.clock.monotonic() + wait
        for _ in range(100):  # each empty-handed round buried at least one message; bound it anyway
            remaining = max(0.0, deadline - self.clock.monotonic())
            resp = self.client.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=max(1, min(BATCH, max_messages)),
                WaitTimeSeconds=min(MAX_WAIT, _seconds(remaining)),
                VisibilityTimeout=_seconds(lease),
                MessageSystemAttributeNames=_SYSTEM_ATTRS,
                MessageAttributeNames=["All"],
            )
            messages = resp.get("Messages", [])
            out = [d for d in (self._accept(m, lease) for m in messages) if d is not None]
            if out or not messages:
                return out
        return []

    def _accept(self, m: dict[str, Any], lease: float) -> Delivery | None:
        attrs = m.get("Attributes", {})
        count = int(attrs.get("ApproximateReceiveCount", "1"))
        sent_at = int(attrs.get("SentTimestamp", "0")) / 1000
        raw = str(m.get("Body", ""))
        if count > self.max_receives:
            self._bury(
                m["MessageId"],
                m["ReceiptHandle"],
                raw,
                exhausted_reason(count - 1, self.max_receives),
                count - 1,
            )
            return None
        try:
            body = decode_body(raw, self.required)
        except BadMessage as e:
            self._bury(m["MessageId"], m["ReceiptHandle"], raw, str(e), count)
            return None
        return Delivery(m["MessageId"], m["ReceiptHandle"], body, count, sent_at, self.clock.now() + lease)

    def _bury(self, message_id: str, receipt: str, raw: str, reason: str, count: int) -> bool:
        """Copy to the DLQ with the reason, then delete: a crash in between duplicates, never loses."""
        self.client.send_message(
            QueueUrl=self.dlq_url,
            MessageBody=raw or "(empty)",
            MessageAttributes={
                "reason": {"DataType": "String", "StringValue": reason[:1000]},
                "original_id": {"DataType": "String", "StringValue": message_id},
                "receive_count": {"DataType": "Number", "StringValue": str(count)},
                "dead_at": {"DataType": "Number", "StringValue": repr(self.clock.now())},
            },
        )
        log.warning(
            "dead-lettered message", extra={"queue": self.name, "message_id": message_id, "reason": reason}
        )
        return self._call(self.client.delete_message, QueueUrl=self.url, ReceiptHandle=receipt)

    def _call(self, fn: Any, **kwargs: Any) -> bool:
        try:
            fn(**kwargs)
        except ClientError as e:
            if _code(e) in _STALE_CODES:
                return False
            raise
        return True

    @_guarded
    def extend(self, delivery: Delivery, lease: float) -> bool:
        return self._call(
            self.client.change_message_visibility,
            QueueUrl=self.url,
            ReceiptHandle=delivery.receipt,
            VisibilityTimeout=_seconds(lease),
        )

    @_guarded
    def ack(self, delivery: Delivery) -> bool:
        return self._call(self.client.delete_message, QueueUrl=self.url, ReceiptHandle=delivery.receipt)

    @_guarded
    def release(self, delivery: Delivery, delay: float = 0) -> bool:
        return self._call(
            self.client.change_message_visibility,
            QueueUrl=self.url,
            ReceiptHandle=delivery.receipt,
            VisibilityTimeout=_seconds(delay),
        )

    @_guarded
    def dead_letter(self, delivery: Delivery, reason: str) -> bool:
        return self._bury(
            delivery.message_id, delivery.receipt, encode_body(delivery.body), reason, delivery.receive_count
        )

    # -- operators ------------------------------------------------------------------------------

    def _counts(self, url: str) -> dict[str, int]:
        attrs = self.client.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return {k: int(v) for k, v in attrs.items()}

    @_guarded
    def stats(self) -> QueueStats:
        q, d = self._counts(self.url), self._counts(self.dlq_url)
        return QueueStats(
            visible=q.get("ApproximateNumberOfMessages", 0),
            in_flight=q.get("ApproximateNumberOfMessagesNotVisible", 0),
            delayed=q.get("ApproximateNumberOfMessagesDelayed", 0),
            dead=sum(d.values()),
            oldest_age=None,  # CloudWatch-only in SQS
        )

    def _sweep_dlq(self, limit: int) -> list[dict[str, Any]]:
        """Receive up to `limit` distinct DLQ messages, hidden briefly so the sweep can page past them."""
        seen: dict[str, dict[str, Any]] = {}
        empty_rounds = 0
        while len(seen) < limit and empty_rounds < 2:
            resp = self.client.receive_message(
                QueueUrl=self.dlq_url,
                MaxNumberOfMessages=min(BATCH, limit - len(seen)),
                WaitTimeSeconds=0,
                VisibilityTimeout=30,
                MessageSystemAttributeNames=_SYSTEM_ATTRS,
                MessageAttributeNames=["All"],
            )
            fresh = [m for m in resp.get("Messages", []) if m["MessageId"] not in seen]
            empty_rounds = 0 if fresh else empty_rounds + 1
            for m in fresh:
                seen[m["MessageId"]] = m
        return list(seen.values())

    def _unhide(self, messages: Sequence[dict[str, Any]]) -> None:
        for i in range(0, len(messages), BATCH):
            entries = [
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for n, m in enumerate(messages[i : i + BATCH])
            ]
            self.client.change_message_visibility_batch(QueueUrl=self.dlq_url, Entries=entries)

    def _as_dead_letter(self, m: dict[str, Any]) -> DeadLetter:
        ma = {k: v.get("StringValue", "") for k, v in m.get("MessageAttributes", {}).items()}
        sa = m.get("Attributes", {})
        count = int(ma.get("receive_count") or self.max_receives)
        reason = ma.get("reason") or exhausted_reason(self.max_receives, self.max_receives)
        dead_at = float(ma.get("dead_at") or int(sa.get("SentTimestamp", "0")) / 1000)
        extra = {"original_id": ma["original_id"]} if "original_id" in ma else {}
        return DeadLetter(m["MessageId"], str(m.get("Body", "")), reason, count, dead_at, extra)

    @_guarded
    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        messages = self._sweep_dlq(limit)
        self._unhide(messages)
        return sorted((self._as_dead_letter(m) for m in messages), key=lambda d: (d.dead_at, d.message_id))

    @_guarded
    def redrive(self, message_ids: Sequence[str] | None = None) -> int:
        wanted = None if message_ids is None else set(message_ids)
        messages = self._sweep_dlq(10_000)
        keep, moved = [], 0
        for m in messages:
            if wanted is not None and m["MessageId"] not in wanted:
                keep.append(m)
                continue
            self.client.send_message(QueueUrl=self.url, MessageBody=m["Body"])
            self.client.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=m["ReceiptHandle"])
            moved += 1
        self._unhide(keep)
        return moved

    @_guarded
    def purge(self) -> None:
        for url in (self.url, self.dlq_url):
            try:
                self.client.purge_queue(QueueUrl=url)
            except ClientError as e:
                if "PurgeQueueInProgress" in _code(e):
                    raise EbbtideError(
                        f"SQS allows one purge per 60 s and {url} was purged recently",
                        hint="try again in a minute",
                    ) from None
                raise
        with self._dedup_lock:
            self._dedup.clear()

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        return f"SqsQueue({self.name!r})"
