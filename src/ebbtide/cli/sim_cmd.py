"""`ebbtide sim`: replay a scenario or a trace under several setups and compare them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ebbtide.cli import context as ctx
from ebbtide.cli.context import console
from ebbtide.errors import ConfigError


def sim(
    scenario: Annotated[
        str | None, typer.Option("--scenario", "-s", help="a built-in scenario, or 'all' for the overview")
    ] = None,
    trace: Annotated[
        Path | None, typer.Option("--trace", help="CSV: arrival_s,media_seconds,size_bytes,kind")
    ] = None,
    setups: Annotated[
        str, typer.Option("--setups", help="comma-separated setup names; 'config' = --config")
    ] = ("seed-fixed,seed-fixed-spot,seed-002-thresholds,ebbtide"),
    seed: Annotated[int, typer.Option("--seed", help="same seed, same result")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    plot_dir: Annotated[
        Path | None, typer.Option("--plot", help="write one PNG timeline per setup here")
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="list scenarios and setups")] = False,
    chunked: Annotated[
        bool, typer.Option("--chunks", help="also run each setup with long uploads split into chunks")
    ] = False,
    ranged_probe: Annotated[
        bool, typer.Option("--ranged-probe/--download-probe", help="with --chunks: the split reads only the "
                           "source's index by ranges (production), or downloads it whole first (what-if)")
    ] = True,
    target_ready: Annotated[
        str | None, typer.Option("--target-ready", help="override the deadline policy's target, e.g. 10m")
    ] = None,
    config: Annotated[
        str | None, typer.Option("--config", "-c", help="an ebbtide.yaml to add as setup 'config'")
    ] = None,
) -> None:
    """Run the real fleet controller and policies on a virtual clock against a workload."""
    from ebbtide.sim import report
    from ebbtide.sim.fleets import SEED_000, fleet_from_settings
    from ebbtide.sim.runner import simulate
    from ebbtide.sim.scenarios import SCENARIOS, get_scenario
    from ebbtide.sim.setups import SETUPS, Setup, get_setup, setup_from_settings
    from ebbtide.sim.workloads import read_trace

    if list_:
        t = Table(title="scenarios")
        t.add_column("name")
        t.add_column("fleet")
        t.add_column("what")
        for s in SCENARIOS.values():
            t.add_row(s.name, s.fleet.name, s.note)
        console.print(t)
        t2 = Table(title="setups")
        t2.add_column("name")
        t2.add_column("what")
        for st in SETUPS.values():
            t2.add_row(st.name, st.note)
        t2.add_row("config", "the --config file's queue, worker and fleet settings")
        console.print(t2)
        return
    if (scenario is None) == (trace is None):
        raise ConfigError("give exactly one of --scenario NAME or --trace FILE", hint="ebbtide sim --list")
    cfg_path = config or ctx._config_path
    chosen: list[Setup] = []
    for name in [n.strip() for n in setups.split(",") if n.strip()]:
        if name == "config":
            if not cfg_path:
                raise ConfigError(
                    "setup 'config' needs --config FILE", hint="ebbtide sim --config ebbtide.yaml ..."
                )
            from ebbtide.config import load_settings

            chosen.append(setup_from_settings(load_settings(cfg_path)))
        else:
            chosen.append(get_setup(name))
    if not chosen:
        raise ConfigError("no setups to compare", hint="--setups seed-original,ebbtide")
    if target_ready is not None:
        from dataclasses import replace

        from ebbtide.config.sections import DeadlinePolicyConfig

        target = DeadlinePolicyConfig.model_validate({"target_ready": target_ready}).target_ready
        chosen = [
            replace(
                s,
                name=f"{s.name}@{target_ready}",
                policy=s.policy.model_copy(update={"target_ready": target}),
            )
            if isinstance(s.policy, DeadlinePolicyConfig)
            else s
            for s in chosen
        ]
    if scenario == "all":
        rows = [simulate(sc.jobs(seed), sc.fleet, s, seed=seed, scenario=sc.name)
                for sc in SCENARIOS.values() for s in chosen]
        if as_json:
            console.print_json(report.to_json(rows))
        else:
            from rich.console import Console

            wide = console if console.width >= 120 else Console(width=120, highlight=False)
            wide.print(report.overview(rows, f"every built-in scenario (seed {seed})"))
        return
    if scenario is not None:
        sc = get_scenario(scenario)
        jobs, fleet, label = sc.jobs(seed), sc.fleet, sc.name
    else:
        assert trace is not None
        jobs, fleet, label = read_trace(trace), SEED_000, trace.name
        if cfg_path:
            from ebbtide.config import load_settings

            settings = load_settings(cfg_path)
            if any(p.provider != "local" for p in settings.fleet.pools):
                fleet = fleet_from_settings(settings)
    results = [simulate(jobs, fleet, s, seed=seed, scenario=label) for s in chosen]
    if chunked:
        from dataclasses import replace

        from ebbtide.sim.chunked import ChunkModel

        model = ChunkModel(ranged_probe=ranged_probe)
        for st in chosen:
            if st.actuation == "ebbtide":  # chunk jobs are ebbtide's; the AWS setups run whole files
                named = replace(st, name=f"{st.name}+chunks")
                results.append(simulate(jobs, fleet, named, seed=seed, scenario=label, chunks=model))
    if as_json:
        console.print_json(report.to_json(results))
    else:
        from rich.console import Console

        wide = console if console.width >= 120 else Console(width=120, highlight=False)
        wide.print(report.table(results, f"{label}: {len(jobs)} job(s) on {fleet.name} (seed {seed})"))
        console.print(f"[dim]fleet: {fleet.note}[/]")
    if plot_dir is not None:
        for r in results:
            p = report.plot(r, plot_dir / f"{label}-{r.setup}.png")
            if not as_json:
                console.print(f"timeline: {p}")


def sim_epilog() -> str:
    """The setups and scenarios, named and explained, for `ebbtide sim --help`."""
    from ebbtide.sim.scenarios import SCENARIOS
    from ebbtide.sim.setups import SETUPS

    setups = [f"[bold]{s.name}[/]: {s.note}" for s in SETUPS.values()]
    setups.append("[bold]config[/]: the --config file's queue, worker and fleet settings")
    scenarios = [f"[bold]{s.name}[/]: {s.note}" for s in SCENARIOS.values()]
    return ("Setups (--setups, comma-separated):\n\n" + "\n\n".join(setups)
            + "\n\nScenarios (--scenario):\n\n" + "\n\n".join(scenarios))


def register(app: typer.Typer) -> None:
    app.command("sim", epilog=sim_epilog())(sim)
