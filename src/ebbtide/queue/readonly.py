"""The `Queue` of a scaler-only process: the user's queue (a depth source), read, never written.

In scaler-only mode (`services.scaler_only`) ebbtide runs no workers and owns no queue; `status`
and the dashboard still show the depth of the queue the fleet scales on. Anything that would send,
receive or change a message there is refused with a ConfigError: it is the user's queue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from ebbtide.errors import ConfigError
from ebbtide.queue.base import DeadLetter, Delivery, DepthSource, QueueStats

HINT = "this config names only fleet.depth_source and foreign pools: ebbtide is the scaler only"


class ReadOnlyQueue:
    def __init__(self, source: DepthSource, url: str) -> None:
        self.source, self.url = source, url
        self.max_receives = 0

    def _refuse(self, what: str) -> NoReturn:
        raise ConfigError(f"{what}: {self.url} is not ebbtide's queue (scaler-only mode)", hint=HINT)

    def send(self, body: Mapping[str, Any] | str, delay: float = 0, dedup_id: str | None = None) -> str:
        self._refuse("send")

    def receive(self, wait: float = 0, lease: float = 120, max_messages: int = 1) -> list[Delivery]:
        self._refuse("receive")

    def extend(self, delivery: Delivery, lease: float) -> bool:
        self._refuse("extend")

    def ack(self, delivery: Delivery) -> bool:
        self._refuse("ack")

    def release(self, delivery: Delivery, delay: float = 0) -> bool:
        self._refuse("release")

    def dead_letter(self, delivery: Delivery, reason: str) -> bool:
        self._refuse("dead-letter")

    def stats(self) -> QueueStats:
        return self.source.stats()

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return []  # the user's dead letters are theirs; ebbtide keeps none here

    def redrive(self, message_ids: Sequence[str] | None = None) -> int:
        self._refuse("redrive")

    def purge(self) -> None:
        self._refuse("purge")

    def close(self) -> None:
        self.source.close()
