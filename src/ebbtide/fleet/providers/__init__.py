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
    if pool.provider == "ec2":
        from ebbtide.fleet.providers.ec2 import Ec2Provider

        return Ec2Provider(pool, settings, clock)
    if pool.provider == "asg":
        from ebbtide.fleet.providers.asg import AsgProvider

        return AsgProvider(pool, settings, clock)
    if pool.provider == "ecs-service":
        from ebbtide.fleet.providers.ecs_service import EcsServiceProvider

        return EcsServiceProvider(pool, settings, clock)
    if pool.provider == "ecs-task":
        from ebbtide.fleet.providers.ecs_task import EcsTaskProvider

        return EcsTaskProvider(pool, settings, clock)
    raise ConfigError(
        f"pool {pool.name}: unknown provider {pool.provider!r}",
        hint="use one of static, local, ec2, asg, ecs-service, ecs-task",
    )


__all__ = ["Instance", "LaunchResult", "Provider", "provider_for"]
