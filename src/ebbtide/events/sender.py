"""Sending the outbox: signed webhooks, retried with backoff, in order per media.

At least once: an event is marked delivered only after every webhook URL answered 2xx, so a sender
killed mid-delivery sends it again on restart (receivers de-duplicate on the `id` field, also in
the `X-Ebbtide-Event` header). Per-media order: of a media's undelivered events only the oldest
is ever tried; a failing one holds the later ones back until it is delivered or given up.
Run one sender per catalog (`ebbtide events`, or the thread `ebbtide serve` starts).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import select

from ebbtide.catalog.models import EventRow
from ebbtide.catalog.sql import SqlCatalog
from ebbtide.config.sections import EventsConfig

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Ebbtide-Signature"
EVENT_HEADER = "X-Ebbtide-Event"
BATCH = 500


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the receiver recomputes and compares."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: float = 300) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - t) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, t, body), header)


def retry_delay(attempts: int, base: float, cap: float) -> float:
    """Exponential backoff: base, 2·base, 4·base, … up to cap (pure)."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


def pick(rows: Sequence[EventRow], now: float) -> list[EventRow]:
    """The events to try now: each group's oldest undelivered event, if it is due (pure)."""
    seen: set[str] = set()
    out = []
    for r in sorted(rows, key=lambda r: r.id):
        group = r.media_id or r.job_id or r.event_id
        if group in seen:
            continue
        seen.add(group)
        if r.next_at <= now:
            out.append(r)
    return out


@dataclass
class Delivery:
    ok: bool
    error: str = ""


Post = Callable[[str, bytes, dict[str, str], float], Delivery]


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Delivery:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # only configured URLs
            return Delivery(200 <= resp.status < 300, f"HTTP {resp.status}")
    except urllib.error.HTTPError as e:
        return Delivery(False, f"HTTP {e.code}")
    except (urllib.error.URLError, OSError) as e:
        return Delivery(False, f"{type(e).__name__}: {e}")


class Sender:
    def __init__(self, catalog: SqlCatalog, cfg: EventsConfig, post: Post = http_post) -> None:
        self.catalog, self.cfg, self.post = catalog, cfg, post
        self.clock = catalog.clock
        self._stop = threading.Event()

    def _send_one(self, row: EventRow) -> Delivery:
        body = json.dumps(row.body, separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", EVENT_HEADER: row.event_id,
                   "User-Agent": "ebbtide-webhooks"}  # fmt: skip
        if self.cfg.secret:
            headers[SIGNATURE_HEADER] = sign(self.cfg.secret, int(self.clock.now()), body)
        for url in self.cfg.webhook_urls:
            got = self.post(url, body, headers, self.cfg.timeout)
            if not got.ok:
                return Delivery(False, f"{url}: {got.error}")
        return Delivery(True)

    def tick(self) -> int:
        """One pass over due events; returns how many were delivered."""
        if not self.cfg.webhook_urls:
            return 0
        with self.catalog._reader() as s:
            rows = list(s.scalars(select(EventRow).where(EventRow.delivered_at.is_(None))
                                  .order_by(EventRow.id).limit(BATCH)))  # fmt: skip
        delivered = 0
        for row in pick(rows, self.clock.now()):
            if self._stop.is_set():
                break
            got = self._send_one(row)
            with self.catalog._writer.begin() as s:
                live = s.get(EventRow, row.id)
                if live is None:
                    continue
                now = self.clock.now()
                if got.ok:
                    live.delivered_at, live.last_error = now, None
                    delivered += 1
                    continue
                live.attempts += 1
                live.last_error = got.error[:1000]
                if live.attempts >= self.cfg.max_attempts:
                    live.delivered_at = now  # given up: logged, so later events are not held forever
                    log.error("webhook given up", extra={"event_id": live.event_id, "error": got.error})
                else:
                    cfg = self.cfg
                    live.next_at = now + retry_delay(live.attempts, cfg.backoff_base, cfg.backoff_max)
                    log.warning("webhook failed; will retry", extra={"event_id": live.event_id,
                                                                     "error": got.error})  # fmt: skip
        return delivered

    def pending(self) -> int:
        with self.catalog._reader() as s:
            return len(list(s.scalars(select(EventRow.id).where(EventRow.delivered_at.is_(None)))))

    def run(self, interval: float = 0.5) -> None:
        while not self._stop.is_set():
            try:
                busy = self.tick()
            except Exception:
                log.exception("webhook sender pass failed")
                busy = 0
            if not busy:
                self._stop.wait(interval)

    def stop(self) -> None:
        self._stop.set()
