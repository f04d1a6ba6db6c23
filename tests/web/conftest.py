"""Web fixtures; the helpers they use live in web_helpers.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from web_helpers import Env, account, make_settings

from ebbtide.services import open_services
from ebbtide.web.app import create_app


@pytest.fixture()
def env(data_dir: Path) -> Iterator[Env]:
    services = open_services(make_settings(data_dir))
    app = create_app(services)
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        yield Env(
            services,
            client,
            account(services, "alice"),
            account(services, "bob"),
            account(services, "root", admin=True),
        )
    services.close()


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ebbtide.media.samples import generate_clip

    return generate_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", seconds=2, width=320, height=240)
