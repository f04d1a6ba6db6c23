"""The `Queue` port: SQS semantics (leases, receive counts, dead letters, long polling).

Every backend passes tests/queue/test_conformance.py. A message body is a JSON object with at
least `job_id` and `kind`; a body that is not is dead-lettered with a reason on receive and never
reaches a consumer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

REQUIRED_FIELDS = ("job_id", "kind")
MAX_BODY = 64 * 1024  # bytes; our bodies are ~100 B, SQS allows 256 KiB
MAX_DEPTH = 32  # nesting of arrays/objects; json.loads recurses, and a deep body would crash it


@dataclass(frozen=True)
class Delivery:
    """One lease on one message. `receipt` identifies this lease, not the message."""

    message_id: str
    receipt: str
    body: dict[str, Any]
    receive_count: int
    sent_at: float
    leased_until: float = 0.0


@dataclass(frozen=True)
class QueueStats:
    visible: int
    in_flight: int
    delayed: int
    dead: int
    oldest_age: float | None = None  # seconds the oldest visible message has waited

    @property
    def backlog(self) -> int:
        return self.visible + self.in_flight + self.delayed

    @classmethod
    def from_counts(
        cls, visible: Any, in_flight: Any, delayed: Any, dead: Any, oldest_sent_at: Any, now: float
    ) -> QueueStats:
        """From an SQL backend's aggregate row; drivers hand counts back as int or Decimal."""
        return cls(
            visible=int(visible),
            in_flight=int(in_flight),
            delayed=int(delayed),
            dead=int(dead),
            oldest_age=None if oldest_sent_at is None else max(0.0, now - float(oldest_sent_at)),
        )


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    body: str  # raw, as sent: it may be the very thing that was malformed
    reason: str
    receive_count: int
    dead_at: float
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> DeadLetter:
        """From an SQL row of (id, body, reason, receive_count, dead_at)."""
        return cls(row[0], row[1], row[2], int(row[3]), float(row[4]))


class BadMessage(ValueError):
    """A body that no consumer can act on."""


def encode_body(body: Mapping[str, Any] | str) -> str:
    """A body as sent. Ours (a mapping) must fit MAX_BODY; a raw string passes as a foreign
    producer's would, and is judged on receive."""
    if isinstance(body, str):
        return body
    text = json.dumps(dict(body), separators=(",", ":"))
    if len(text.encode()) > MAX_BODY:
        raise BadMessage(f"body is {len(text.encode())} bytes, above the limit of {MAX_BODY}")
    return text


def _depth(text: str) -> int:
    """Deepest nesting of [ and { outside JSON strings (a scan, so it cannot recurse)."""
    depth = deepest = 0
    in_str = escaped = False
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def decode_body(raw: str | bytes, required: Sequence[str] = REQUIRED_FIELDS) -> dict[str, Any]:
    """Parse and check a message body; raises BadMessage with a reason a person can read.

    Any body — huge, deeply nested, not UTF-8 — ends here as BadMessage (then a dead letter),
    never as an exception that would crash the worker that leased it, once per lease.
    A queue that also carries other systems' messages (intake mappings) passes `required=()`:
    any JSON object reaches the worker, which maps it or dead-letters it with its own reason.
    """
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_BODY:
        raise BadMessage(f"body is {size} bytes, above the limit of {MAX_BODY}")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadMessage(f"body is not UTF-8 text (bad byte at {e.start})") from None
    if _depth(raw) > MAX_DEPTH:
        raise BadMessage(f"body nests deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(raw)
    except (ValueError, TypeError, RecursionError) as e:
        raise BadMessage(f"body is not valid JSON ({e.__class__.__name__}: {e})") from None
    if not isinstance(value, dict):
        raise BadMessage(f"body must be a JSON object, got {type(value).__name__}")
    missing = [f for f in required if not isinstance(value.get(f), str) or not value.get(f)]
    if missing:
        raise BadMessage(f"body is missing {', '.join(missing)} (every job needs job_id and kind)")
    return value


@runtime_checkable
class Queue(Protocol):
    """At-least-once job queue. Times are seconds; `lease` is the visibility timeout."""

    max_receives: int

    def send(self, body: Mapping[str, Any] | str, delay: float = 0, dedup_id: str | None = None) -> str:
        """Enqueue; returns the message id. A repeated `dedup_id` returns the first id (5 min window)."""
        ...

    def receive(self, wait: float = 0, lease: float = 120, max_messages: int = 1) -> list[Delivery]:
        """Lease up to `max_messages`; long-polls up to `wait` s and returns as soon as one arrives."""
        ...

    def extend(self, delivery: Delivery, lease: float) -> bool:
        """Restart the lease from now; False if this lease is no longer the message's current one."""
        ...

    def ack(self, delivery: Delivery) -> bool:
        """Delete the message if `delivery` still holds it; False for a stale lease."""
        ...

    def release(self, delivery: Delivery, delay: float = 0) -> bool:
        """Make the message visible again after `delay` s (0 = at once)."""
        ...

    def dead_letter(self, delivery: Delivery, reason: str) -> bool:
        """Move a leased message to the dead letters now (a consumer's verdict)."""
        ...

    def stats(self) -> QueueStats: ...

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...

    def redrive(self, message_ids: Sequence[str] | None = None) -> int:
        """Move dead letters (all, or the named ones) back to the queue with a fresh receive count."""
        ...

    def purge(self) -> None: ...

    def close(self) -> None: ...


def job_ids_of(raw_bodies: Sequence[str]) -> set[str]:
    """The job ids named by message bodies (malformed ones name none)."""
    out = set()
    for raw in raw_bodies:
        try:
            out.add(str(decode_body(raw)["job_id"]))
        except BadMessage:
            continue
    return out


@runtime_checkable
class JobIndex(Protocol):
    """A queue that can list which jobs have a live message (visible, delayed or leased).

    The catalog reconciler uses it to find jobs `queued` in the catalog whose message is gone.
    SQS cannot list its messages and does not implement it (the reconciler falls back to depth).
    """

    def live_job_ids(self) -> set[str]: ...


@runtime_checkable
class DepthSource(Protocol):
    """Read-only depth of a queue the fleet watches but does not consume (every Queue is one too)."""

    def stats(self) -> QueueStats: ...

    def close(self) -> None: ...
