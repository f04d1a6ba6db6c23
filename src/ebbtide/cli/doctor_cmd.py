"""`ebbtide doctor`: check a config, or a live AWS setup, against the failure modes in the seeds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ebbtide.cli import context as ctx
from ebbtide.cli.context import console

if TYPE_CHECKING:
    from ebbtide.config import Settings
    from ebbtide.doctor.checks import Finding


def doctor(
    config: Annotated[str | None, typer.Option("--config", "-c", help="ebbtide.yaml to check")] = None,
    job_minutes: Annotated[
        float, typer.Option("--job-minutes", help="longest expected video, minutes")
    ] = 120.0,
    as_json: Annotated[bool, typer.Option("--json", help="print findings as JSON")] = False,
    aws: Annotated[bool, typer.Option("--aws", help="read a live AWS setup through boto3")] = False,
    queue_url: Annotated[str | None, typer.Option("--queue-url", help="--aws: the SQS queue URL")] = None,
    asg: Annotated[str | None, typer.Option("--asg", help="--aws: the Auto Scaling group name")] = None,
    cluster: Annotated[str | None, typer.Option("--cluster", help="--aws: the ECS cluster")] = None,
    service: Annotated[str | None, typer.Option("--service", help="--aws: the ECS service")] = None,
    stack: Annotated[
        str | None,
        typer.Option("--stack", help="--aws: a stack `ebbtide aws deploy` made: its queue and its drift"),
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option("--endpoint-url", help="--aws: endpoint (moto, localstack); else aws.endpoint_url"),
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="--aws: region; else aws.region")] = None,
    setup_name: Annotated[
        str | None, typer.Option("--setup", help="check a built-in `ebbtide sim` setup instead of a config")
    ] = None,
    heartbeat: Annotated[
        bool,
        typer.Option("--workers-heartbeat/--no-workers-heartbeat",
                     help="--aws: the workers extend their message's visibility while they work"),
    ] = False,
    speed: Annotated[
        float | None, typer.Option("--speed", help="--aws: media seconds a worker transcodes per second")
    ] = None,
) -> None:
    """Check a config (or, with --aws, a live AWS setup) for the mistakes that lose or stall work.

    Each finding says what to change: a lease shorter than a job without heartbeats, scale-in that
    stops busy workers, step tables that cannot reach capacity, short polling, no dead-letter
    limit, idle timers that make the fleet thrash, spot pools with no fallback, pool quotas.
    With --stack, the stack's own resources are also compared with the template it applied
    (drift: a queue's visibility changed by hand, a launch template deleted).
    Without --aws nothing is contacted. Exit 0 when all is well or
    only warnings remain, 1 when any finding is an error, 2 when the config cannot be read.
    """
    from ebbtide.config import load_settings
    from ebbtide.doctor.checks import diagnose
    from ebbtide.doctor.report import render, to_json

    path = config or ctx._config_path
    settings = load_settings(path)
    if setup_name is not None:
        from ebbtide.doctor.setups import diagnose_setup
        from ebbtide.sim.setups import get_setup

        findings = diagnose_setup(get_setup(setup_name), job_minutes * 60)
        source = f"setup {setup_name}"
    elif aws:
        from ebbtide.doctor.aws import boto_clients, diagnose_aws, read_setup

        clients = boto_clients(region or settings.aws.region, endpoint_url or settings.aws.endpoint_url)
        drift: list[Finding] = []
        if stack:
            from ebbtide.doctor.stack_drift import read_stack, stack_findings

            deployed = read_stack(clients, stack)
            queue_url = queue_url or deployed.outputs.get("QueueUrl")
            drift = stack_findings(clients, deployed)
        setup = read_setup(clients, queue_url, asg, cluster, service)
        findings = drift + diagnose_aws(setup, settings, heartbeat, speed, job_minutes * 60)
        findings += _live_queue(settings, clients("sqs"), queue_url)
        findings.sort(key=lambda f: f.severity != "error")
        source = "aws: " + ", ".join(x for x in (stack and f"stack {stack}", queue_url, asg, service) if x)
    else:
        findings = diagnose(settings, job_minutes * 60) + _live_queue(settings)
        source = path or "defaults"
    if as_json:
        console.print_json(to_json(findings))
    else:
        render(findings, console, source)
    if any(f.severity == "error" for f in findings):
        raise typer.Exit(1)


def _live_queue(settings: Settings, client: Any = None, only_url: str | None = None) -> list[Finding]:
    """The configured SQS queue's live RedrivePolicy against the config (when the config names one)."""
    from ebbtide.doctor.checks import Finding
    from ebbtide.doctor.live_queue import check_queue_policy, configured_sqs_name, read_configured_queue

    name = configured_sqs_name(settings)
    if name is None or (only_url is not None and only_url.rstrip("/").rsplit("/", 1)[-1] != name):
        return []
    try:
        live = read_configured_queue(settings, client)
    except Exception as e:  # unreachable: say so rather than pass silently
        return [Finding("queue-unread", "warning", f"could not read SQS queue {name}: {e}",
                        "the live receive limit was not compared with the config",
                        "check queue.endpoint_url, queue.region and credentials")]  # fmt: skip
    return check_queue_policy(settings, *live) if live else []


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
