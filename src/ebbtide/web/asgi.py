"""An app factory for ASGI servers: `ebbtide serve --workers N`, or gunicorn/uvicorn run by hand.

    uvicorn --factory ebbtide.web.asgi:create_app_from_env --workers 4 --port 8000

Each server process opens its own ports (catalog, queue, store) from the same config, found the
usual way (`EBBTIDE_CONFIG`, `./ebbtide.yaml`, embedded defaults; `EBBTIDE_<SECTION>__<KEY>`
overrides). `EBBTIDE_WEB_PARTS` (e.g. `gallery,stream`) serves only some parts.
"""

from __future__ import annotations

import atexit
import os

from fastapi import FastAPI

from ebbtide.config import load_settings
from ebbtide.services import open_services
from ebbtide.web.app import create_app

PARTS_ENV = "EBBTIDE_WEB_PARTS"


def create_app_from_env() -> FastAPI:
    services = open_services(load_settings(os.environ.get("EBBTIDE_CONFIG") or None))
    atexit.register(services.close)
    raw = os.environ.get(PARTS_ENV, "")
    parts = {p.strip() for p in raw.split(",") if p.strip()} or None
    return create_app(services, parts=parts)
