"""The whole config, its loading from YAML, env overrides and embedded defaults."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from ebbtide.config.sections import (
    AwsConfig,
    CatalogConfig,
    FleetConfig,
    MediaConfig,
    PoolConfig,
    QueueConfig,
    Section,
    StoreConfig,
    WebConfig,
    WorkerConfig,
    default_local_max,
)
from ebbtide.config.types import parse_duration
from ebbtide.errors import ConfigError

ENV_CONFIG = "EBBTIDE_CONFIG"
ENV_PREFIX = "EBBTIDE_"
DEFAULT_FILE = "ebbtide.yaml"


class Settings(Section):
    data_dir: str = "./ebbtide-data"
    queue: QueueConfig = Field(default_factory=QueueConfig)
    catalog: CatalogConfig = Field(default_factory=CatalogConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    media: MediaConfig = Field(default_factory=MediaConfig)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    fleet: FleetConfig = Field(default_factory=FleetConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    aws: AwsConfig = Field(default_factory=AwsConfig)

    @model_validator(mode="before")
    @classmethod
    def _one_lease(cls, data: Any) -> Any:
        """`worker.lease` was a second key for `queue.lease`; it is still read, as that one key."""
        if not isinstance(data, dict) or not isinstance(data.get("worker"), dict):
            return data
        if "lease" not in data["worker"]:
            return data
        worker = dict(data["worker"])
        lease = worker.pop("lease")
        queue = dict(data.get("queue") or {})
        if "lease" in queue and parse_duration(queue["lease"]) != parse_duration(lease):
            raise ValueError(f"worker.lease ({lease}) disagrees with queue.lease ({queue['lease']}); "
                             "set only queue.lease")
        queue["lease"] = lease
        return {**data, "worker": worker, "queue": queue}

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()


def _format_errors(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-"))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "literal_error":
            msg = f"{msg} (got {e.get('input')!r})"
        lines.append(f"{path or '(top)'}: {msg}")
    return f"bad config in {source}: " + "; ".join(lines)


def _env_overrides(env: dict[str, str]) -> dict[str, Any]:
    """`EBBTIDE_QUEUE__URL=...` sets queue.url; values are parsed as YAML scalars."""
    tree: dict[str, Any] = {}
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX) or "__" not in key:
            continue
        parts = [p.lower() for p in key[len(ENV_PREFIX) :].split("__")]
        node = tree
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(raw) if raw != "" else ""
    return tree


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _fill_defaults(s: Settings) -> Settings:
    """Embedded defaults: everything under data_dir, a local pool, a persisted HMAC secret."""
    data = s.data_path
    updates: dict[str, Any] = {}
    if not s.queue.url:
        updates["queue"] = s.queue.model_copy(update={"url": f"sqlite:///{data / 'queue.db'}"})
    if not s.catalog.url:
        updates["catalog"] = s.catalog.model_copy(update={"url": f"sqlite:///{data / 'catalog.db'}"})
    store = s.store
    if not store.url:
        store = store.model_copy(update={"url": f"file://{data / 'store'}"})
    if store.secret is None and store.url.startswith("file://"):
        store = store.model_copy(update={"secret": _persisted_secret(data / "secret.key")})
    updates["store"] = store
    if s.web.session_secret is None:
        updates["web"] = s.web.model_copy(
            update={"session_secret": store.secret or _persisted_secret(data / "secret.key")}
        )
    if not s.fleet.pools:
        local = PoolConfig(name="local", provider="local", min=0, max=default_local_max(), idle_exit=None)
        updates["fleet"] = s.fleet.model_copy(update={"pools": (local,)})
    return s.model_copy(update=updates)


def _persisted_secret(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    return token


def load_settings(
    path: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Load config: explicit path, else $EBBTIDE_CONFIG, else ./ebbtide.yaml if present, else defaults.

    Raises ConfigError naming the key path and what is allowed.
    """
    env = dict(os.environ) if env is None else env
    chosen = path or env.get(ENV_CONFIG)
    raw: dict[str, Any] = {}
    source = "defaults"
    if chosen:
        p = Path(chosen)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist", hint="check --config or $EBBTIDE_CONFIG")
        raw, source = _read_yaml(p), str(p)
    elif Path(DEFAULT_FILE).is_file():
        raw, source = _read_yaml(Path(DEFAULT_FILE)), DEFAULT_FILE
    merged = _merge(_merge(raw, _env_overrides(env)), overrides or {})
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as e:
        raise ConfigError(_format_errors(e, source), hint="see docs/config.md for every key") from None
    return _fill_defaults(settings)


def _read_yaml(p: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p} must hold a mapping of sections (queue:, store:, …) at the top")
    return data
