"""Worker test fixtures: one embedded install (queue, catalog, store) per test in tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from worker_helpers import build_config

from ebbtide.config import Settings, load_settings
from ebbtide.services import Services, open_services


@pytest.fixture()
def make_env(data_dir: Path) -> Iterator[Callable[..., tuple[Settings, Services, Path]]]:
    """Returns make(**sections) → (settings, services, config file) for one embedded install."""
    opened: list[Services] = []

    def make(**sections: dict[str, Any]) -> tuple[Settings, Services, Path]:
        raw = build_config(data_dir, **sections)
        path = data_dir / "ebbtide.yaml"
        path.write_text(yaml.safe_dump(raw))
        settings = load_settings(path, env={})
        services = open_services(settings)
        opened.append(services)
        return settings, services, path

    yield make
    for s in opened:
        s.close()
