"""The ports a process needs, opened once from the settings.

`cli`, `web`, `worker` and `fleet` take a `Services` instead of opening backends themselves, so
there is one way to go from a config to a queue, a catalog and a store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, TypeVar, cast

from ebbtide.catalog.base import Catalog
from ebbtide.clock import SYSTEM_CLOCK, Clock
from ebbtide.config import Settings
from ebbtide.config.settings import with_secrets
from ebbtide.errors import BackendUnavailable
from ebbtide.outage import reconnect_delay
from ebbtide.queue.base import Queue
from ebbtide.storage.base import ObjectStore

log = logging.getLogger(__name__)
T = TypeVar("T")


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


def scaler_only(settings: Settings) -> bool:
    """A config naming a depth source and only foreign pools: ebbtide runs no workers and owns no
    queue or store; the scaler's own small state (workers it launched, decisions) is the catalog."""
    f = settings.fleet
    return f.depth_source is not None and bool(f.pools) and all(p.workers == "foreign" for p in f.pools)


class NoStore:
    """The object store of a scaler-only process: there is none; any use is a ConfigError."""

    def __getattr__(self, name: str) -> NoReturn:
        from ebbtide.errors import ConfigError

        if name.startswith("__"):
            raise AttributeError(name)

        raise ConfigError(f"no object store in scaler-only mode (store.{name})",
                          hint="this config names only fleet.depth_source and foreign pools")


def _open_scaler_only(settings: Settings, clock: Clock, wait: float) -> Services:
    """The catalog (the controller's state) and the user's queue, read only; nothing else."""
    from ebbtide.catalog import open_catalog
    from ebbtide.queue.depth import open_depth_source
    from ebbtide.queue.readonly import ReadOnlyQueue

    url = settings.fleet.depth_source or ""
    catalog = _retrying(lambda: open_catalog(settings.catalog.url, clock=clock), wait)
    depth = open_depth_source(url, clock, settings.aws.region, settings.aws.endpoint_url)
    return Services(settings, ReadOnlyQueue(depth, url), catalog, cast(ObjectStore, NoStore()), clock)


def _retrying(fn: Callable[[], T], wait: float) -> T:
    deadline = time.monotonic() + wait
    failures = 0
    while True:
        try:
            return fn()
        except BackendUnavailable as e:
            failures += 1
            if time.monotonic() >= deadline:
                raise
            if failures == 1:
                log.warning("waiting for the %s: %s", e.part or "backend", e.message)
            time.sleep(min(reconnect_delay(failures), max(0.0, deadline - time.monotonic())))


def open_services(settings: Settings, clock: Clock = SYSTEM_CLOCK, wait: float = 0.0) -> Services:
    """Open the queue, catalog and store. With `wait`, a server that is down at start (a
    BackendUnavailable) is retried with backoff for up to `wait` seconds: long-running processes
    (worker, scaler, up) should start during an outage and serve once it is over.

    In scaler-only mode (`scaler_only`) only the catalog is opened, plus the user's queue read
    only (docs/foreign-pools.md)."""
    from ebbtide.catalog import open_catalog
    from ebbtide.catalog.sql import SqlCatalog
    from ebbtide.fsperm import private_dir
    from ebbtide.queue import open_queue
    from ebbtide.storage import open_store

    private_dir(settings.data_path)
    if scaler_only(settings):
        return _open_scaler_only(settings, clock, wait)
    settings = with_secrets(settings)

    def _open() -> tuple[Queue, SqlCatalog]:
        queue = open_queue(settings.queue, clock=clock, accept_foreign=bool(settings.intake.mappings))
        try:
            return queue, open_catalog(settings.catalog.url, clock=clock)
        except BaseException:
            queue.close()
            raise

    queue, catalog = _retrying(_open, wait)
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
