"""Queue message bodies: `{"job_id", "kind", "media_id"?}`. The catalog holds the job payload.

Keeping the body small keeps it under SQS's 256 KiB limit whatever the payload, and makes the
catalog the one source of truth for what a job asks for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ebbtide.errors import EbbtideError

TRANSCODE = "transcode"
TRANSCODE_CHUNK = "transcode-chunk"  # one time range of a split source, every rung
TRANSCODE_AUDIO = "transcode-audio"  # a split source's audio (once, whole file) and thumbnail
STITCH = "stitch"  # joins a split source's parts and publishes them
MEDIA_PARTS = (TRANSCODE_CHUNK, TRANSCODE_AUDIO, STITCH)  # queued by a transcode, never submitted
COMMAND = "command"
PYTHON_PREFIX = "python:"

_PY_KIND = re.compile(r"^python:([A-Za-z_][\w.]*):([A-Za-z_]\w*)$")


class UnknownKind(EbbtideError):
    """A job kind no handler understands."""


@dataclass(frozen=True)
class JobMessage:
    job_id: str
    kind: str
    media_id: str | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"job_id": self.job_id, "kind": self.kind}
        if self.media_id:
            out["media_id"] = self.media_id
        return out

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> JobMessage:
        media = body.get("media_id")
        return cls(job_id=str(body["job_id"]), kind=str(body["kind"]), media_id=str(media) if media else None)


def python_target(kind: str) -> tuple[str, str]:
    """`python:pkg.module:function` → ("pkg.module", "function")."""
    m = _PY_KIND.match(kind)
    if not m:
        raise UnknownKind(
            f"job kind {kind!r} is not python:module:function",
            hint="name a function as python:package.module:function",
        )
    return m.group(1), m.group(2)


def check_kind(kind: str) -> str:
    """Refuse a kind at submit time rather than letting it poison the queue."""
    if kind in (TRANSCODE, COMMAND):
        return kind
    if kind.startswith(PYTHON_PREFIX):
        python_target(kind)
        return kind
    raise UnknownKind(
        f"unknown job kind {kind!r}",
        hint="use transcode, command or python:module:function",
    )
