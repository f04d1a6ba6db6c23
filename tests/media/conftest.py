"""Clips for the media tests, generated with lavfi once per xdist worker (each takes < 1 s)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ebbtide.config import MediaConfig
from ebbtide.media.samples import generate_clip

ClipFactory = Callable[..., Path]


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> ClipFactory:
    """clip(name, **generate_clip kwargs) -> Path, cached by name for the session."""
    root = tmp_path_factory.mktemp("clips")
    cache: dict[str, Path] = {}

    def make(name: str, **kw: Any) -> Path:
        if name not in cache:
            suffix = kw.pop("suffix", ".mp4")
            cache[name] = generate_clip(root / f"{name}{suffix}", **kw)
        return cache[name]

    return make


@pytest.fixture()
def fast_cfg() -> MediaConfig:
    """The default ladder with x264's fastest preset: same commands, quicker tests."""
    return MediaConfig(preset="ultrafast")
