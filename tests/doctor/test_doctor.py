"""The doctor on seed 000's current settings and on ebbtide's defaults (pure checks, real CLI)."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from ebbtide.cli import doctor_cmd
from ebbtide.config import load_settings
from ebbtide.doctor.checks import diagnose

SEED_000 = Path(__file__).resolve().parents[2] / "docs" / "examples" / "seed-000-current.yaml"


def test_seed_000_current_reports_its_four_critical_issues(tmp_path: Path) -> None:
    s = load_settings(SEED_000, env={}, overrides={"data_dir": str(tmp_path)})
    codes = {f.code for f in diagnose(s)}
    assert {"lease-short", "scale-in-busy", "step-table-short", "no-long-polling"} <= codes
    errors = {f.code for f in diagnose(s) if f.severity == "error"}
    assert {"lease-short", "scale-in-busy", "step-table-short"} <= errors


def test_defaults_are_clean(tmp_path: Path) -> None:
    assert diagnose(load_settings(env={}, overrides={"data_dir": str(tmp_path)})) == []


def test_other_checks(tmp_path: Path) -> None:
    s = load_settings(
        env={},
        overrides={
            "data_dir": str(tmp_path),
            "queue": {"max_receives": 1},
            "fleet": {
                "policy": {"kind": "sustained", "idle_to_zero": "30s"},
                "pools": [
                    {
                        "name": "spot",
                        "provider": "ec2",
                        "spot": True,
                        "max": 4,
                        "quota": 2,
                        "boot_time": "90s",
                        "price_per_hour": 0.1,
                    },
                ],
            },
        },
    )
    codes = {f.code for f in diagnose(s)}
    assert {"no-retry", "thrash", "spot-no-fallback", "max-above-quota"} <= codes


def test_cli_exit_codes(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    app = typer.Typer()
    doctor_cmd.register(app)
    app.command("noop")(lambda: None)
    runner = CliRunner()
    bad = runner.invoke(app, ["doctor", "--config", str(SEED_000)])
    assert bad.exit_code == 1 and "scale-in-busy" in bad.output
    good = runner.invoke(app, ["doctor"])
    assert good.exit_code == 0 and "no known failure mode" in good.output
