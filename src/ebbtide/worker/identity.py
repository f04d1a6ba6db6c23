"""Which instance or task this worker runs on, so the fleet can match it to its inventory.

Auto Scaling groups and ECS services choose their own instance ids and task ARNs; a worker that
did not report one would look like a launch that never booted and be reaped. The launcher's
`EBBTIDE_PROVIDER_ID` wins; otherwise ECS's task metadata endpoint (v4) or EC2's IMDS tells.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping

from ebbtide.worker.spot import ImdsClient

log = logging.getLogger(__name__)

ENV_PROVIDER_ID = "EBBTIDE_PROVIDER_ID"
ENV_ECS_METADATA = "ECS_CONTAINER_METADATA_URI_V4"
INSTANCE_ID_PATH = "/latest/meta-data/instance-id"


def discover_provider_id(env: Mapping[str, str], imds: ImdsClient | None, timeout: float = 2.0) -> str | None:
    """`imds` is given only when IMDS is known to answer (on EC2), so elsewhere this costs nothing."""
    if env.get(ENV_PROVIDER_ID):
        return env[ENV_PROVIDER_ID]
    if env.get(ENV_ECS_METADATA):
        try:
            with urllib.request.urlopen(env[ENV_ECS_METADATA].rstrip("/") + "/task", timeout=timeout) as r:
                arn = json.loads(r.read()).get("TaskARN")
            return str(arn) if arn else None
        except (OSError, ValueError, urllib.error.URLError) as e:
            log.warning("ECS task metadata unavailable", extra={"error": str(e)})
    if imds is not None:
        try:
            return imds.get(INSTANCE_ID_PATH) or None
        except (OSError, urllib.error.URLError) as e:
            log.warning("instance id unavailable from IMDS", extra={"error": str(e)})
    return None
