"""The doctor flags seed 002's "0 waiting for 10 min → terminate all" rule: in a config (a warning,
ebbtide keeps busy spots) and in the simulator's setup that acts it the seed's way (an error)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from ebbtide.cli.main import app
from ebbtide.config import load_settings
from ebbtide.config.sections import DeadlinePolicyConfig
from ebbtide.doctor.checks import diagnose

SEED_002 = Path(__file__).resolve().parents[2] / "docs" / "examples" / "seed-002-scaler.yaml"


def test_seed_002_config_is_flagged(tmp_path: Path) -> None:
    s = load_settings(SEED_002, env={}, overrides={"data_dir": str(tmp_path)})
    found = [f for f in diagnose(s, media_seconds=3600) if f.code == "terminate-all"]
    assert len(found) == 1 and found[0].severity == "warning"
    assert "10 min" in found[0].what and "spot" in found[0].why
    # an idle clock longer than any job cannot catch one running
    assert not [f for f in diagnose(s, media_seconds=300) if f.code == "terminate-all"]
    deadline = s.model_copy(update={"fleet": s.fleet.model_copy(update={"policy": DeadlinePolicyConfig()})})
    assert not [f for f in diagnose(deadline, media_seconds=3600) if f.code == "terminate-all"]


def test_doctor_on_sim_setups(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--config", str(SEED_002), "doctor", "--job-minutes", "60", "--setup"]
    res = runner.invoke(app, [*base, "seed-002-thresholds"], env={"EBBTIDE_DATA_DIR": str(tmp_path)})
    assert res.exit_code == 1, res.output
    assert "terminate-all" in res.output
    res = runner.invoke(app, [*base, "seed-002-ebbtide"], env={"EBBTIDE_DATA_DIR": str(tmp_path)})
    assert res.exit_code == 0, res.output
    assert "no known failure mode" in res.output
