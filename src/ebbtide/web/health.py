"""`/health`: can this process reach the queue, catalog and store it depends on? 503 names which not."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ebbtide.web.auth import ServicesDep

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


def _check(fn: Callable[[], Any]) -> dict[str, Any]:
    t0 = time.monotonic()
    try:
        fn()
    except Exception as e:  # any failure of a dependency is the answer, not a crash
        log.warning("health check failed", extra={"error": f"{type(e).__name__}: {e}"})
        return {"ok": False, "error": f"{type(e).__name__}: {e}"[:300]}
    return {"ok": True, "ms": round((time.monotonic() - t0) * 1000, 1)}


@router.get("/health", responses={503: {"description": "a dependency is down"}})
def health(services: ServicesDep) -> JSONResponse:
    checks = {
        "queue": _check(services.queue.stats),
        "catalog": _check(lambda: services.catalog.job_counts()),
        "store": _check(lambda: services.store.exists("health/probe")),
    }
    failed = [name for name, c in checks.items() if not c["ok"]]
    body = {"status": "fail" if failed else "ok", "failed": failed, "checks": checks}
    return JSONResponse(body, status_code=503 if failed else 200)
