from __future__ import annotations

from pathlib import Path

import pytest

from ebbtide.config import load_settings, parse_duration
from ebbtide.config.settings import with_secrets
from ebbtide.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("10m", 600), ("2h", 7200), ("1.5h", 5400), (45, 45), ("250ms", 0.25)]
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["ten minutes", "-5", "5 weeks", True])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_embedded_defaults_live_under_data_dir(tmp_path: Path) -> None:
    s = load_settings(env={}, overrides={"data_dir": str(tmp_path / "d")})
    assert s.queue.url == f"sqlite:///{tmp_path / 'd' / 'queue.db'}"
    assert s.catalog.url.startswith("sqlite:///") and s.store.url == f"file://{tmp_path / 'd' / 'store'}"
    assert s.store.secret is None and not (tmp_path / "d").exists()  # loading creates nothing
    s = with_secrets(s)  # what open_services does
    assert s.store.secret and len(s.store.secret) == 64 and s.web.session_secret == s.store.secret
    # the secret is persisted, so signed URLs survive a restart
    assert load_settings(env={}, overrides={"data_dir": str(tmp_path / "d")}).store.secret == s.store.secret
    assert [p.provider for p in s.fleet.pools] == ["local"] and s.fleet.pools[0].max >= 1
    assert s.fleet.policy.kind == "deadline"


def test_unknown_key_names_its_path(tmp_path: Path) -> None:
    f = tmp_path / "ebbtide.yaml"
    f.write_text("queue:\n  visibility: 10m\n")
    with pytest.raises(ConfigError, match=r"queue\.visibility: unknown key"):
        load_settings(f, env={})


def test_bad_url_lists_allowed_schemes(tmp_path: Path) -> None:
    f = tmp_path / "ebbtide.yaml"
    f.write_text("queue:\n  url: amqp://localhost\n")
    with pytest.raises(ConfigError, match=r"queue\.url: .*allowed schemes: sqlite://, sqs://"):
        load_settings(f, env={})


def test_bad_value_and_pool_bounds(tmp_path: Path) -> None:
    f = tmp_path / "ebbtide.yaml"
    f.write_text(
        "fleet:\n  pools:\n    - {name: spot, provider: ec2, min: 3, max: 1}\n  policy: {kind: magic}\n"
    )
    with pytest.raises(ConfigError) as e:
        load_settings(f, env={})
    assert "fleet.pools.0" in str(e.value) and "min (3) is above max (1)" in str(e.value)
    assert "fleet.policy" in str(e.value)


def test_env_overrides_and_config_env(tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text("queue:\n  lease: 5m\n")
    s = load_settings(env={"EBBTIDE_CONFIG": str(f), "EBBTIDE_QUEUE__MAX_RECEIVES": "3",
                           "EBBTIDE_DATA_DIR": "ignored-no-double-underscore"})
    assert s.queue.lease == 300 and s.queue.max_receives == 3


def test_missing_config_file_is_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", env={})
