"""Providers, one module per backend; `provider_for` picks one from a pool's config."""

from __future__ import annotations

from ebbtide.clock import Clock
from ebbtide.config import PoolConfig, Settings
from ebbtide.errors import ConfigError
from ebbtide.fleet.providers.base import Instance, LaunchResult, Provider


def provider_for(
    pool: PoolConfig, settings: Settings, clock: Clock, config_path: str | None = None
) -> Provider:
    if pool.provider == "static":
        from ebbtide.fleet.providers.static import StaticProvider

        return StaticProvider(pool.name)
    if pool.provider == "local":
        from ebbtide.fleet.providers.local import LocalProvider

        return LocalProvider(pool, settings.data_path, clock, config_path=config_path)
    raise ConfigError(
        f"pool {pool.name}: provider {pool.provider!r} is not available in this build yet",
        hint="use provider: local or static",
    )


__all__ = ["Instance", "LaunchResult", "Provider", "provider_for"]
