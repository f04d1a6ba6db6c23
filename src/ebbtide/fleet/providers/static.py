"""The static pool: always-on workers (an edge box, a home server) that heartbeat on their own.

The fleet counts them as capacity and never starts or stops them.
"""

from __future__ import annotations

from collections.abc import Sequence

from ebbtide.fleet.providers.base import Instance, LaunchResult


class StaticProvider:
    name = "static"
    retires_specific = False

    def __init__(self, pool: str) -> None:
        self.pool = pool

    def launch(self, n: int) -> LaunchResult:
        return LaunchResult(requested=n, error=f"pool {self.pool} is static: its workers are not launched")

    def retire(self, ids: Sequence[str]) -> list[str]:
        return []

    def inventory(self) -> list[Instance]:
        return []
