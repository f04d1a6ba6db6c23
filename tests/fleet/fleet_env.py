"""A throwaway embedded-defaults install in tmp_path for the real-process fleet tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ebbtide.config import Settings, load_settings


def write_config(tmp_path: Path, **fleet: Any) -> tuple[Path, Settings]:
    """Short leases and polls so heartbeats (lease/3) and drains are seen within about a second."""
    cfg = {
        "data_dir": str(tmp_path / "data"),
        "queue": {"wait": 1, "lease": 3},
        "worker": {"lease": 3, "spot_watch": "off", "ecs_protection": "off"},
        "media": {"rungs": [{"height": 144, "bitrate_kbps": 200}]},
        "fleet": {
            "interval": 0.3,
            "drain_idle_after": 1,
            "pools": [{"name": "local", "provider": "local", "min": 0, "max": 2, "boot_time": 2}],
            **fleet,
        },
    }
    path = tmp_path / "ebbtide.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, load_settings(path, env={})


def wait_for(check: Callable[[], Any], timeout: float, what: str, step: float = 0.1) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
