"""Spot interruption notices from the EC2 instance metadata service (IMDSv2).

PUT /latest/api/token (header X-aws-ec2-metadata-token-ttl-seconds) gives a token; GET
/latest/meta-data/spot/instance-action with X-aws-ec2-metadata-token answers 404 while there is no
notice and 200 with `{"action": "terminate", "time": …}` about two minutes before the instance
goes. urllib keeps the worker's start-up free of boto3.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

TOKEN_PATH = "/latest/api/token"
ACTION_PATH = "/latest/meta-data/spot/instance-action"
TOKEN_TTL = 21600
PROBE_TIMEOUT = 0.5  # `auto` gives IMDS this long to answer at start


@dataclass(frozen=True)
class SpotNotice:
    action: str
    time: str


class ImdsClient:
    def __init__(self, base_url: str, timeout: float = 2.0) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self._token: str | None = None

    def token(self) -> str:
        req = urllib.request.Request(
            self.base + TOKEN_PATH,
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL)},
        )
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            self._token = resp.read().decode().strip()
        return self._token

    def get(self, path: str) -> str:
        """A metadata value, e.g. `/latest/meta-data/instance-id`."""
        token = self._token or self.token()
        req = urllib.request.Request(self.base + path, headers={"X-aws-ec2-metadata-token": token})
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            return str(resp.read().decode().strip())

    def notice(self) -> SpotNotice | None:
        """The pending interruption, or None (404 = no notice)."""
        for retry in (False, True):
            token = self._token if self._token and not retry else self.token()
            req = urllib.request.Request(self.base + ACTION_PATH, headers={"X-aws-ec2-metadata-token": token})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return _parse(resp.read())
            except urllib.error.HTTPError as e:
                if e.code == 404:
                    return None
                if e.code == 401 and not retry:  # token expired: fetch a new one once
                    continue
                raise
        return None


def _parse(raw: bytes) -> SpotNotice:
    try:
        doc = json.loads(raw)
        return SpotNotice(action=str(doc.get("action", "terminate")), time=str(doc.get("time", "")))
    except (ValueError, AttributeError):
        return SpotNotice(action="terminate", time="")


def spot_enabled(mode: Literal["auto", "on", "off"], client: ImdsClient) -> bool:
    """`auto`: on only when IMDS answers quickly now (on EC2); off elsewhere, at no cost."""
    if mode != "auto":
        return mode == "on"
    quick = ImdsClient(client.base, timeout=PROBE_TIMEOUT)
    try:
        client._token = quick.token()
        return True
    except (OSError, urllib.error.URLError):
        return False


class SpotWatcher:
    """Polls for a notice every `interval` s on a daemon thread; calls `on_notice` once."""

    def __init__(self, client: ImdsClient, interval: float, on_notice: Callable[[SpotNotice], None]) -> None:
        self.client = client
        self.interval = interval
        self._on_notice = on_notice
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ebbtide-spot", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                notice = self.client.notice()
            except (OSError, urllib.error.URLError) as e:
                log.warning("spot notice poll failed", extra={"error": str(e)})
                notice = None
            if notice is not None:
                log.warning("spot interruption notice", extra={"action": notice.action, "at": notice.time})
                self._on_notice(notice)
                return
            self._stop.wait(self.interval)
