"""Config: one YAML file (`ebbtide.yaml`) → frozen pydantic models, env overrides, embedded defaults."""

from ebbtide.config.sections import (
    CatalogConfig,
    DeadlinePolicyConfig,
    FleetConfig,
    MediaConfig,
    PolicyConfig,
    PoolConfig,
    QueueConfig,
    Rung,
    StepPolicyConfig,
    StoreConfig,
    SustainedPolicyConfig,
    TargetPolicyConfig,
    WebConfig,
    WorkerConfig,
)
from ebbtide.config.settings import Settings, load_settings
from ebbtide.config.types import Duration, format_duration, parse_duration

__all__ = [
    "CatalogConfig",
    "DeadlinePolicyConfig",
    "Duration",
    "FleetConfig",
    "MediaConfig",
    "PolicyConfig",
    "PoolConfig",
    "QueueConfig",
    "Rung",
    "Settings",
    "StepPolicyConfig",
    "StoreConfig",
    "SustainedPolicyConfig",
    "TargetPolicyConfig",
    "WebConfig",
    "WorkerConfig",
    "format_duration",
    "load_settings",
    "parse_duration",
]
