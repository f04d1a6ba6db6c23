"""The whole config, its loading from YAML, env overrides and embedded defaults."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from ebbtide.config.sections import (
    AwsConfig,
    CatalogConfig,
    CorsConfig,
    EventsConfig,
    FleetConfig,
    IntakeConfig,
    MediaConfig,
    PoolConfig,
    QueueConfig,
    Section,
    SourcesConfig,
    StoreConfig,
    WebConfig,
    WorkerConfig,
    default_local_max,
)
from ebbtide.config.types import parse_duration
from ebbtide.errors import ConfigError
from ebbtide.fsperm import private_dir

ENV_CONFIG = "EBBTIDE_CONFIG"
ENV_PREFIX = "EBBTIDE_"
DEFAULT_FILE = "ebbtide.yaml"


class Settings(Section):
    data_dir: str = Field("./ebbtide-data", description="where embedded backends keep their files")
    queue: QueueConfig = Field(default_factory=QueueConfig)
    catalog: CatalogConfig = Field(default_factory=CatalogConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    media: MediaConfig = Field(default_factory=MediaConfig)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    fleet: FleetConfig = Field(default_factory=FleetConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    aws: AwsConfig = Field(default_factory=AwsConfig)
    intake: IntakeConfig = Field(default_factory=IntakeConfig)
    sources: SourcesConfig = Field(default_factory=SourcesConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    cors: CorsConfig = Field(default_factory=CorsConfig)

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


def _format_errors(err: ValidationError, source: str, env_vars: dict[tuple[str, ...], str]) -> str:
    """One line naming each bad key; a value that came from the environment names its variable."""
    lines = []
    from_env = 0
    for e in err.errors():
        loc = tuple(str(p) for p in e["loc"] if not str(p).startswith("function-"))
        path = ".".join(loc)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "literal_error":
            msg = f"{msg} (got {e.get('input')!r})"
        var = next((v for parts, v in env_vars.items() if loc[: len(parts)] == parts), None)
        if var is not None:
            from_env += 1
            path = f"{path} (from ${var})"
        lines.append(f"{path or '(top)'}: {msg}")
    if from_env == len(lines) and source == "defaults":
        source = "the environment"
    return f"bad config in {source}: " + "; ".join(lines)


def _env_vars(env: dict[str, str]) -> dict[tuple[str, ...], str]:
    """Key path -> the EBBTIDE_… variable that set it, to name it in errors."""
    return {
        tuple(p.lower() for p in k[len(ENV_PREFIX) :].split("__")): k
        for k in env
        if k.startswith(ENV_PREFIX) and "__" in k
    }


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
    """Embedded defaults: everything under data_dir, a local pool, the persisted HMAC secret if any."""
    data = s.data_path
    updates: dict[str, Any] = {}
    if not s.queue.url:
        updates["queue"] = s.queue.model_copy(update={"url": f"sqlite:///{data / 'queue.db'}"})
    if not s.catalog.url:
        updates["catalog"] = s.catalog.model_copy(update={"url": f"sqlite:///{data / 'catalog.db'}"})
    store = s.store
    if not store.url:
        store = store.model_copy(update={"url": f"file://{data / 'store'}"})
    updates["store"] = store
    if not s.fleet.pools:
        local = PoolConfig(name="local", provider="local", min=0, max=default_local_max(), idle_exit=None)
        updates["fleet"] = s.fleet.model_copy(update={"pools": (local,)})
    return _fill_secrets(s.model_copy(update=updates), create=False)


def with_secrets(s: Settings) -> Settings:
    """The settings with the file store's and the session's secrets, creating data_dir/secret.key.

    Called when a process opens its services, not by load_settings: read-only commands
    (`config check`, `doctor`, `probe`, `--help`) must not leave files wherever they run.
    """
    return _fill_secrets(s, create=True)


def _fill_secrets(s: Settings, create: bool) -> Settings:
    key = s.data_path / "secret.key"
    store = s.store
    if store.secret is None and store.url.startswith("file://"):
        store = store.model_copy(update={"secret": _persisted_secret(key, create)})
    web = s.web
    if web.session_secret is None:
        web = web.model_copy(update={"session_secret": store.secret or _persisted_secret(key, create)})
    return s.model_copy(update={"store": store, "web": web})


def _persisted_secret(path: Path, create: bool) -> str | None:
    if path.exists():
        return path.read_text().strip()
    if not create:
        return None
    private_dir(path.parent)
    token = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process (e.g. `up` and its first worker) won the race
        for _ in range(50):
            existing = path.read_text().strip()
            if existing:
                return existing
            time.sleep(0.02)
        raise ConfigError(f"{path} is empty", hint="delete it; the next start makes a new one") from None
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
        raise ConfigError(
            _format_errors(e, source, _env_vars(env)),
            hint="see docs/config.md for every key, or `ebbtide config reference`",
        ) from None
    return _fill_defaults(settings)


def _read_yaml(p: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p} is not valid YAML{_where(e)}", hint=_YAML_HINT) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p} must hold a mapping of sections (queue:, store:, …) at the top")
    return data


_YAML_HINT = "YAML nests by indentation with spaces (no tabs); quote values that contain ': ' or '#'"


def _where(e: yaml.YAMLError) -> str:
    """`: line 3, column 5: mapping values are not allowed here`, without PyYAML's `<unicode string>`."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or ""
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{at}: {problem}" if problem else at
