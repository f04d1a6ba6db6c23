"""The ports a process needs, opened once from the settings.

`cli`, `web`, `worker` and `fleet` take a `Services` instead of opening backends themselves, so
there is one way to go from a config to a queue, a catalog and a store.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ebbtide.catalog.base import Catalog
from ebbtide.clock import SYSTEM_CLOCK, Clock
from ebbtide.config import Settings
from ebbtide.config.settings import with_secrets
from ebbtide.errors import BackendUnavailable
from ebbtide.outage import reconnect_delay
from ebbtide.queue.base import Queue
from ebbtide.storage.base import ObjectStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    settings: Settings
    queue: Queue
    catalog: Catalog
    store: ObjectStore
    clock: Clock

    def close(self) -> None:
        self.queue.close()
        self.catalog.close()


def public_base_url(settings: Settings) -> str:
    """Where the web app is reached; the file store's signed URLs point there."""
    if settings.web.public_url:
        return settings.web.public_url.rstrip("/")
    return f"http://{settings.web.host}:{settings.web.port}"


def open_services(settings: Settings, clock: Clock = SYSTEM_CLOCK, wait: float = 0.0) -> Services:
    """Open the queue, catalog and store. With `wait`, a server that is down at start (a
    BackendUnavailable) is retried with backoff for up to `wait` seconds: long-running processes
    (worker, scaler, up) should start during an outage and serve once it is over."""
    from ebbtide.catalog import open_catalog
    from ebbtide.fsperm import private_dir
    from ebbtide.queue import open_queue
    from ebbtide.storage import open_store

    private_dir(settings.data_path)
    settings = with_secrets(settings)
    deadline = time.monotonic() + wait
    failures = 0
    while True:
        queue = None
        try:
            queue = open_queue(settings.queue, clock=clock, accept_foreign=bool(settings.intake.mappings))
            catalog = open_catalog(settings.catalog.url, clock=clock)
            break
        except BackendUnavailable as e:
            if queue is not None:
                queue.close()
            failures += 1
            if time.monotonic() >= deadline:
                raise
            if failures == 1:
                log.warning("waiting for the %s: %s", e.part or "backend", e.message)
            time.sleep(min(reconnect_delay(failures), max(0.0, deadline - time.monotonic())))
    if settings.events.webhook_urls:  # every state change this process makes goes to the outbox
        from ebbtide.events.outbox import install

        install(catalog)
    return Services(
        settings=settings,
        queue=queue,
        catalog=catalog,
        store=open_store(settings.store, url_base=public_base_url(settings)),
        clock=clock,
    )
