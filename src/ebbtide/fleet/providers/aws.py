"""What the AWS providers share: a boto3 client factory, pool options, and errors a person can act on.

Region and endpoint come from the pool's `options` (`region`, `endpoint_url`) first, then from the
`aws:` section, so one pool can live in another region and tests can point everything at moto.
boto3 is imported here only, and only when an AWS pool is configured: embedded installs never load it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ebbtide.config.sections import PoolConfig
from ebbtide.config.settings import Settings
from ebbtide.config.types import format_duration
from ebbtide.errors import ConfigError, EbbtideError

log = logging.getLogger("ebbtide.fleet.aws")

T = TypeVar("T")

TAG_POOL = "ebbtide:pool"
TAG_WORKER = "ebbtide:worker-id"

# Launch errors that mean "no room right now" (spot shortage, quotas): the controller moves on to
# the next pool. Anything else is still reported in LaunchResult.error, but labelled as a setup fault.
CAPACITY_CODES = frozenset({
    "InsufficientInstanceCapacity",
    "InsufficientCapacity",
    "InsufficientHostCapacity",
    "InsufficientReservedInstanceCapacity",
    "SpotMaxPriceTooLow",
    "MaxSpotInstanceCountExceeded",
    "InstanceLimitExceeded",
    "VcpuLimitExceeded",
    "InsufficientFreeAddressesInSubnet",
    "Unsupported",  # instance type not offered in this AZ
    "RequestLimitExceeded",
})

CREDENTIALS_HINT = (
    "set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run the scaler with an "
    "instance/task role"
)


class CloudError(EbbtideError):
    """An AWS call failed in a way the scaler cannot fix by itself (credentials, permissions, names)."""


class PoolOptions:
    """Typed reads of `fleet.pools[].options`; a bad value names its key."""

    def __init__(self, pool: PoolConfig) -> None:
        self.pool = pool.name
        self.raw: Mapping[str, Any] = pool.options

    def key(self, name: str) -> str:
        return f"fleet.pools[{self.pool}].options.{name}"

    def required(self, name: str, default: str | None = None, hint: str | None = None) -> str:
        value = self.raw.get(name, default)
        if value is None or value == "":
            raise ConfigError(f"{self.key(name)} is required for this provider", hint=hint)
        if not isinstance(value, str):
            raise ConfigError(f"{self.key(name)} must be a string, got {value!r}", hint=hint)
        return value

    def optional(self, name: str) -> str | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{self.key(name)} must be a string, got {value!r}")
        return value

    def strings(self, name: str) -> list[str]:
        """A list, or one comma-separated string (what an env override gives)."""
        value = self.raw.get(name)
        if value is None or value == "":
            return []
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ConfigError(f"{self.key(name)} must be a list of strings, got {value!r}")

    def flag(self, name: str, default: bool) -> bool:
        value = self.raw.get(name, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.key(name)} must be true or false, got {value!r}")
        return value


def sentence(actions: tuple[str, ...]) -> str:
    """`a, b and c`: a provider's ACTIONS as the hint text of a permission error."""
    return actions[0] if len(actions) == 1 else ", ".join(actions[:-1]) + " and " + actions[-1]


def client(service: str, settings: Settings, opts: PoolOptions) -> Any:
    """A boto3 client for one pool; a missing profile is a ConfigError at start, not mid-run."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    region = opts.optional("region") or settings.aws.region
    endpoint = opts.optional("endpoint_url") or settings.aws.endpoint_url
    config = Config(
        retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=30,
        user_agent_extra="ebbtide",
    )
    try:
        session: Any = boto3.session.Session(profile_name=opts.optional("profile"), region_name=region)
        return session.client(service, endpoint_url=endpoint, config=config)
    except ProfileNotFound as e:
        raise ConfigError(f"pool {opts.pool}: {e}", hint=CREDENTIALS_HINT) from None
    except BotoCoreError as e:
        raise ConfigError(f"pool {opts.pool}: cannot make an AWS {service} client: {e}",
                          hint="check aws.region and aws.endpoint_url") from None


def error_code(e: BaseException) -> str:
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def is_capacity(e: BaseException) -> bool:
    return error_code(e) in CAPACITY_CODES


def describe(e: BaseException) -> str:
    """One line for LaunchResult.error and logs: the AWS code and message, never credentials."""
    from botocore.exceptions import ClientError

    if isinstance(e, ClientError):
        msg = e.response.get("Error", {}).get("Message", "") or str(e)
        return f"{error_code(e)}: {msg}"
    return f"{e.__class__.__name__}: {e}"


def hint_for(e: BaseException, permissions: str) -> str | None:
    from botocore.exceptions import (
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    code = error_code(e)
    if isinstance(e, NoCredentialsError | PartialCredentialsError) or code in (
        "AuthFailure", "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
    ):
        return CREDENTIALS_HINT
    if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
        return "the AWS session token expired; refresh the credentials (aws sso login, new role session)"
    if code.startswith("UnauthorizedOperation") or code.startswith("AccessDenied"):
        return f"the scaler's IAM role needs {permissions}"
    if isinstance(e, EndpointConnectionError):
        return "check aws.region / aws.endpoint_url and the network path to AWS"
    if isinstance(e, NoRegionError):
        return "set aws.region in ebbtide.yaml"
    if code in CAPACITY_CODES:
        return "no capacity or quota right now; the controller falls back to the next pool"
    return None


def call(what: str, permissions: str, fn: Callable[..., T], **kwargs: Any) -> T:
    """Run one AWS call; any failure becomes a CloudError with a hint (for inventory and retire)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(**kwargs)
    except (ClientError, BotoCoreError) as e:
        raise CloudError(f"{what} failed: {describe(e)}", hint=hint_for(e, permissions)) from None


def launch_error(e: BaseException, permissions: str) -> str:
    """The LaunchResult.error text: the AWS message plus what to do about it."""
    hint = hint_for(e, permissions)
    return describe(e) + (f" (hint: {hint})" if hint else "")


def worker_command(pool: PoolConfig, once: bool = False) -> list[str]:
    """The worker command line a cloud instance or task runs for this pool."""
    cmd = ["ebbtide", "worker"] + (["--once"] if once else []) + ["--pool", pool.name]
    if pool.idle_exit is not None:
        cmd += ["--idle-exit", format_duration(pool.idle_exit)]
    return cmd


def started_by(pool: str) -> str:
    """ECS `startedBy` tag for a pool: at most 36 of [A-Za-z0-9_/-], so long names get a digest."""
    tag = f"ebbtide/{pool}"
    if len(tag) <= 36:
        return tag
    digest = hashlib.sha1(pool.encode()).hexdigest()[:8]
    return f"ebbtide/{pool[:19]}-{digest}"


def chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def pending_id(prefix: str, k: int) -> str:
    """A stable placeholder id for capacity asked of AWS that has no instance/task yet."""
    return f"{prefix}#pending-{k}"


def is_pending(instance_id: str) -> bool:
    return "#pending-" in instance_id
