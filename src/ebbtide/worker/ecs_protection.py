"""ECS task scale-in protection: on while busy, off while idle, through the ECS agent endpoint.

PUT $ECS_AGENT_URI/task-protection/v1/state with {"ProtectionEnabled": bool, "ExpiresInMinutes": n}.
Protection expires on its own, so a long job refreshes it halfway through its lifetime; a worker
that dies mid-job therefore cannot protect its task for longer than that.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.error
import urllib.request
from typing import Literal

from ebbtide.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)

# The agent calls this with the task role's credentials; ebbtide.deploy grants it from here.
ACTIONS = ("ecs:UpdateTaskProtection",)
ENV_AGENT = "ECS_AGENT_URI"
STATE_PATH = "/task-protection/v1/state"


class EcsProtection:
    def __init__(self, agent_uri: str, expires_minutes: int = 60, clock: Clock = SYSTEM_CLOCK) -> None:
        self.url = agent_uri.rstrip("/") + STATE_PATH
        self.expires_minutes = expires_minutes
        self.clock = clock
        self._lock = threading.Lock()
        self._state: bool | None = None
        self._set_at = 0.0

    def ensure(self, busy: bool) -> None:
        """Send the state if it changed, or if protection is on and half its lifetime is gone."""
        with self._lock:
            now = self.clock.monotonic()
            due = busy and now - self._set_at > self.expires_minutes * 30
            if self._state == busy and not due:
                return
            if self._put(busy):
                self._state, self._set_at = busy, now

    def _put(self, enabled: bool) -> bool:
        body: dict[str, object] = {"ProtectionEnabled": enabled}
        if enabled:
            body["ExpiresInMinutes"] = self.expires_minutes
        req = urllib.request.Request(
            self.url,
            data=json.dumps(body).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=3) as resp:
                resp.read()
            log.info("ecs task protection set", extra={"enabled": enabled})
            return True
        except (OSError, urllib.error.URLError) as e:
            log.warning("ecs task protection failed", extra={"enabled": enabled, "error": str(e)})
            return False


def ecs_protection_for(
    mode: Literal["auto", "on", "off"], env: dict[str, str] | None = None, clock: Clock = SYSTEM_CLOCK
) -> EcsProtection | None:
    env = dict(os.environ) if env is None else env
    uri = env.get(ENV_AGENT)
    if mode == "off" or (mode == "auto" and not uri):
        return None
    if not uri:
        log.warning("ecs_protection is on but $ECS_AGENT_URI is not set; protection disabled")
        return None
    return EcsProtection(uri, clock=clock)
