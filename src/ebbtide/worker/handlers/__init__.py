"""Job handlers, one module per kind; `resolve(kind)` picks one without importing the others."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ebbtide.worker.context import JobContext
from ebbtide.worker.messages import (
    COMMAND,
    PYTHON_PREFIX,
    STITCH,
    TRANSCODE,
    TRANSCODE_AUDIO,
    TRANSCODE_CHUNK,
    UnknownKind,
)


@dataclass(frozen=True)
class Outcome:
    """What a handler did. `recorded` means it already finished the job in the ledger itself
    (transcode publishes and finishes atomically); `won` is then the ledger's verdict."""

    result: dict[str, Any] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    recorded: bool = False
    won: bool = True


Handler = Callable[[JobContext], Outcome]

_MODULES = {
    TRANSCODE: "ebbtide.worker.handlers.transcode",
    TRANSCODE_CHUNK: "ebbtide.worker.handlers.transcode_chunk",
    TRANSCODE_AUDIO: "ebbtide.worker.handlers.transcode_audio",
    STITCH: "ebbtide.worker.handlers.stitch",
    COMMAND: "ebbtide.worker.handlers.command",
}


def resolve(kind: str) -> Handler:
    if kind.startswith(PYTHON_PREFIX):
        module = importlib.import_module("ebbtide.worker.handlers.python_call")
    elif kind in _MODULES:
        module = importlib.import_module(_MODULES[kind])
    else:
        raise UnknownKind(
            f"unknown job kind {kind!r}", hint="use transcode, command or python:module:function"
        )
    handler: Handler = module.run
    return handler
