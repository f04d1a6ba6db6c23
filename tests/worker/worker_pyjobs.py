"""Functions that `python:worker_pyjobs:…` jobs call in the tests (a solver stand-in)."""

from __future__ import annotations

import time
from typing import Any


def solve(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    for i in range(4):
        ctx.check_cancelled()
        ctx.progress((i + 1) / 4)
        time.sleep(0.05)
    (ctx.job_dir / "output" / "answer.txt").write_text(str(payload["x"] * 2))
    return {"answer": payload["x"] * 2}
