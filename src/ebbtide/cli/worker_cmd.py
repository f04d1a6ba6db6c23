"""`ebbtide worker`: run a worker process (long-poll, single-run, idle exit)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from ebbtide.cli.context import err_console, settings
from ebbtide.config.types import parse_duration
from ebbtide.errors import ConfigError


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker(
        pool: Annotated[
            str, typer.Option("--pool", envvar="EBBTIDE_POOL", help="pool this worker belongs to")
        ] = "default",
        once: Annotated[
            bool, typer.Option("--once", help="take one job, run it, exit with its status")
        ] = False,
        idle_exit: Annotated[
            str | None, typer.Option("--idle-exit", help="exit 0 after this long without a job, e.g. 10m")
        ] = None,
        job: Annotated[
            str | None,
            typer.Option("--job", envvar="EBBTIDE_JOB_ID", help="single-run mode for this job id"),
        ] = None,
        no_heartbeat: Annotated[
            bool, typer.Option("--no-heartbeat", hidden=True, help="never extend leases (experiments only)")
        ] = False,
        log_level: Annotated[str, typer.Option("--log-level", envvar="EBBTIDE_LOG_LEVEL")] = "INFO",
    ) -> None:
        """Turn queue messages into finished work until stopped, idle or drained.

        SIGTERM/SIGINT finish the current job within worker.grace, else release it at once.
        """
        from ebbtide.services import open_services
        from ebbtide.worker.logfmt import setup_logging
        from ebbtide.worker.runtime import Worker

        setup_logging(log_level)
        idle: float | None = None
        if idle_exit:
            try:
                idle = parse_duration(idle_exit)
            except ValueError as e:
                raise ConfigError(f"--idle-exit: {e}", hint="write e.g. --idle-exit 10m") from None
        s = settings()
        services = open_services(s, wait=s.worker.outage_budget)  # a server still starting: wait
        try:
            w = Worker(
                services, pool=pool, once=once, idle_exit=idle, job_id=job or None,
                heartbeat=False if no_heartbeat else None,
            )
            code = w.run()
        finally:
            services.close()
        if code:
            err_console.print(f"[red]job failed[/] (worker {w.worker_id}, pid {os.getpid()})")
        raise typer.Exit(code)
