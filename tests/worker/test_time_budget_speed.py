"""The speed a transcode's time budget assumes (issue 10): the pool's configured speed, or what the
catalog measured for that pool when it was slower. Real embedded catalog; attempts recorded as a
worker records them."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from ebbtide.catalog.states import JobState
from ebbtide.worker.handlers.transcode import pool_speed


def test_budget_speed_comes_from_the_pools_measured_speed_when_slower(make_env: Callable[..., Any]) -> None:
    pools = [
        {"name": "slow", "provider": "static", "max": 1, "speed": 1.0},
        {"name": "fresh", "provider": "static", "max": 1, "speed": 2.0},
    ]
    _, services, _ = make_env(fleet={"pools": pools})
    cat = services.catalog
    cat.register_worker("w-slow", "slow", None, 0.0)
    for _ in range(3):  # 0.05 media seconds in ≥ 0.25 wall seconds: ≤ 0.2x realtime
        job = cat.create_job("command", {"command": "true"}, work_seconds=0.05)
        att = cat.start_attempt(job.id, "w-slow", 1)
        assert att is not None
        time.sleep(0.25)
        assert cat.finish_attempt(job.id, att.id, JobState.SUCCEEDED)
    measured = cat.recent_speeds(pool="slow")
    assert len(measured) == 3 and all(0 < v <= 0.2 for v in measured), measured

    def speed(pool: str | None) -> float:
        return pool_speed(SimpleNamespace(services=services, pool=pool))  # type: ignore[arg-type]

    assert speed("slow") == sorted(measured)[1]  # the median, below the configured 1.0
    assert speed("fresh") == 2.0  # no history: the configured speed
    # no pool named (a standalone worker): the slowest configured speed, or all history if slower
    assert speed(None) == sorted(measured)[1]
