"""`ebbtide up`, `scaler`, `submit`, `status`: run the fleet, feed it, and watch it.

Heavy modules (catalog, media, web) are imported inside the commands so `ebbtide --help` and
worker start-up stay fast.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group
from rich.table import Table

from ebbtide.cli import context
from ebbtide.cli.context import console, err_console, settings, with_web_address
from ebbtide.errors import BackendUnavailable, EbbtideError, NotFound

if TYPE_CHECKING:
    from ebbtide.catalog.base import Catalog
    from ebbtide.fleet.controller import Controller
    from ebbtide.fleet.snapshot import Snapshot
    from ebbtide.services import Services


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("scaler")(scaler)
    app.command("submit")(submit)
    app.command("status")(status)


# ebbtide up / scaler ---------------------------------------------------------------------------
def up(
    demo: Annotated[bool, typer.Option("--demo", help="generate a short sample clip and submit it")] = False,
    web: Annotated[bool, typer.Option("--web/--no-web", help="also serve the web app")] = True,
    host: Annotated[str | None, typer.Option("--host", help="web app address (default: web.host)")] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="web app port (default: web.port)")
    ] = None,
    run_for: Annotated[float | None, typer.Option("--for", hidden=True, help="stop after N seconds")] = None,
) -> None:
    """Run everything on this machine: the fleet controller with its local pool, and the web app."""
    from ebbtide.fleet.build import build_controller
    from ebbtide.services import open_services, scaler_only
    from ebbtide.worker.runtime import CANCEL_WAIT

    s = with_web_address(settings(), host, port)
    services = open_services(s, wait=s.worker.outage_budget)  # a server still starting: wait
    controller = build_controller(services, config_path=context._config_path)
    pools = ", ".join(f"{p.name} ({p.provider}, {p.min}-{p.max})" for p in s.fleet.pools)
    console.print(f"[bold]ebbtide up[/] data in {s.data_path}; pools: {pools}; policy {s.fleet.policy.kind}")
    if scaler_only(s):
        console.print(f"scaler-only: foreign workers on {s.fleet.depth_source}; no web app, queue or store")
        web = demo = False
    server = None
    try:
        server = _start_web(services) if web else None
        if demo:
            _submit_demo(services)
        _loop(controller, run_for)
    finally:
        # workers get their full grace to finish the job in hand, else they release it
        wait = s.worker.grace + CANCEL_WAIT + 5.0
        console.print(f"stopping: local workers finish or release their jobs (up to {wait:g}s)")
        for p in controller.providers.values():
            stop_all = getattr(p, "stop_all", None)
            if callable(stop_all):
                killed = stop_all(timeout=wait)
                if killed:
                    err_console.print(f"[yellow]{len(killed)} worker(s) killed after {wait:g}s[/]; "
                                      "their jobs return when their lease runs out")
        if server is not None:
            server.should_exit = True
        services.close()


def scaler(
    once: Annotated[bool, typer.Option("--once", help="one observe/decide/act tick, then exit")] = False,
    run_for: Annotated[float | None, typer.Option("--for", hidden=True, help="stop after N seconds")] = None,
) -> None:
    """Run the fleet controller loop (workers it started outlive it and are adopted on restart)."""
    from ebbtide.fleet.build import build_controller
    from ebbtide.services import open_services

    s = settings()
    services = open_services(s, wait=0 if once else s.worker.outage_budget)
    try:
        controller = build_controller(services, config_path=context._config_path)
        if once:
            controller.tick()
            _print_outcomes(controller, force=True)
            return
        _loop(controller, run_for)
    finally:
        services.close()


def _loop(controller: Controller, run_for: float | None) -> None:
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    end = time.monotonic() + run_for if run_for is not None else None
    console.print(f"controller ticking every {controller.interval:g}s — Ctrl-C to stop")
    down: set[str] = set()  # parts reported down: one line per outage, not one per tick
    try:
        while not stop.is_set() and (end is None or time.monotonic() < end):
            try:
                controller.tick()
                _print_outcomes(controller)
                if down:
                    console.print(f"[green]{', '.join(sorted(down))} back[/]; ticking again")
                    down.clear()
            except BackendUnavailable as e:
                if e.part not in down:
                    down.add(e.part)
                    err_console.print(f"[yellow]{e.part or 'a backend'} down:[/] {e.message}; retrying")
            except EbbtideError as e:
                hint = f" [dim]({e.hint})[/]" if e.hint else ""
                err_console.print(f"[red]tick failed:[/] {e.message}{hint}")
            except Exception as e:  # a flaky backend must not end the loop; the next tick retries
                err_console.print(f"[red]tick failed:[/] {e.__class__.__name__}: {e}")
            stop.wait(controller.interval)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


_shown: dict[str, tuple[int, ...]] = {}


def _print_outcomes(controller: Controller, force: bool = False) -> None:
    """One line per pool whenever what it wants or does changes."""
    for o in controller.last_outcomes:
        key = (o.desired, o.running, o.busy, o.launched, o.retired, o.drained, o.reaped)
        if not force and _shown.get(o.pool) == key:
            continue
        _shown[o.pool] = key
        acts = [f"{n} {w}" for n, w in ((o.launched, "launched"), (o.retired, "retired"),
                                        (o.drained, "asked to drain"), (o.reaped, "reaped")) if n]
        stamp = time.strftime("%H:%M:%S")
        if o.error is not None:
            err_console.print(f"[dim]{stamp}[/] [bold]{o.pool}[/] [red]provider {o.error.op} failed:[/] "
                              f"{o.error.message} (retry in {max(0.0, o.error.retry_at - time.time()):.0f}s)")
        console.print(
            f"[dim]{stamp}[/] [bold]{o.pool}[/] desired {o.desired} running {o.running} busy {o.busy}"
            + (f" [green]{', '.join(acts)}[/]" if acts else "")
            + f"\n  [dim]{o.reason}[/]"
        )


def _start_web(services: Services) -> Any:
    from ebbtide.services import public_base_url
    from ebbtide.web.app import create_app
    from ebbtide.web.server import bind, serve_in_thread

    sock = bind(services.settings.web.host, services.settings.web.port)
    server = serve_in_thread(create_app(services), sock)
    console.print(f"web app: [bold]{public_base_url(services.settings)}[/]")
    name, password = _owner(services.catalog, None)
    if password:
        from ebbtide.cli.reveal import reveal_password

        reveal_password(name, password, services.settings.data_path)
    else:
        console.print(f"login: [bold]{name}[/] (password set earlier)")
    return server


def _owner(catalog: Catalog, name: str | None) -> tuple[str, str | None]:
    """(user name, new password or None): the admin by default, created on first use."""
    if name is None:
        try:
            from ebbtide.web.bootstrap import ensure_admin
        except ImportError:
            name = "admin"
        else:
            return ensure_admin(catalog)
    if catalog.find_user(name) is None:
        raise NotFound(
            f"no user {name!r}",
            hint=f"create it first with `ebbtide users add {name}`, or leave out --owner to upload as admin",
        )
    return name, None


def _submit_demo(services: Services) -> None:
    from ebbtide.media.samples import generate_clip
    from ebbtide.worker.intake import submit_file

    clip = generate_clip(services.settings.data_path / "demo" / "demo.mp4", seconds=4, width=640, height=360)
    name, _ = _owner(services.catalog, None)
    user = services.catalog.find_user(name)
    assert user is not None
    media = submit_file(services, clip, user.id, "ebbtide demo")
    console.print(f"demo clip submitted: media {media.id} — watch the fleet wake up")


# ebbtide submit --------------------------------------------------------------------------------
def submit(
    files: Annotated[
        list[str], typer.Argument(help="video files to upload, or s3://bucket/key to transcode in place")
    ],
    owner: Annotated[
        str | None, typer.Option("--owner", help="user the uploads belong to (default admin)")
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="title (default: file name)")] = None,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", help="show progress until done")] = True,
    timeout: Annotated[float, typer.Option("--timeout", help="stop following after N seconds")] = 3600.0,
) -> None:
    """Upload files (or queue s3:// sources where they are); follow them with progress bars until done."""
    from ebbtide.services import open_services
    from ebbtide.storage.sources import is_location
    from ebbtide.worker.intake import submit_file, submit_location

    missing = [f for f in files if not is_location(f) and not Path(f).is_file()]
    if missing:
        raise EbbtideError(f"no such file: {', '.join(missing)}", hint="give paths to video files")
    services = open_services(settings())
    try:
        name, password = _owner(services.catalog, owner)
        if password:
            from ebbtide.cli.reveal import reveal_password

            reveal_password(name, password, services.settings.data_path)
        user = services.catalog.find_user(name)
        assert user is not None
        ids = []
        for f in files:
            if is_location(f):
                media = submit_location(services, f, user.id, title or None)
            else:
                media = submit_file(services, Path(f), user.id, title or None)
            ids.append((media.id, media.title))
            console.print(f"queued [bold]{media.title}[/] as video {media.id}")
        if follow:
            failed = _follow(services, ids, timeout)
            if failed:
                raise typer.Exit(1)
    finally:
        services.close()


def _follow(services: Services, ids: list[tuple[str, str]], timeout: float) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ebbtide.catalog.states import MediaState

    done_states = {MediaState.COMPLETE, MediaState.FAILED}
    failed = 0
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[state]}"),
                  TimeElapsedColumn(), console=console) as bars:
        tasks = {mid: bars.add_task(title, total=1.0, state="queued") for mid, title in ids}
        left = set(tasks)
        started = services.clock.now()
        end = time.monotonic() + timeout
        warned = False
        while left and time.monotonic() < end:
            if not warned and _nobody_working(services, started):
                warned = True
                bars.console.print(
                    "[yellow]nothing is picking these up:[/] no worker is running and no scaler has acted "
                    f"since they were queued\n[dim]hint: run `{NOBODY_HINT}` in another terminal "
                    "(or `ebbtide scaler`, or `ebbtide worker`); they stay queued until then[/]"
                )
            for mid in sorted(left):
                m = services.catalog.get_media(mid)
                progress = 1.0 if m.state in (MediaState.TRANSCODED, MediaState.COMPLETE) else m.progress
                label = str(m.state) if m.state != MediaState.FAILED else f"[red]failed: {m.error}[/]"
                bars.update(tasks[mid], completed=progress, state=label)
                if m.state in done_states:
                    left.discard(mid)
                    failed += m.state == MediaState.FAILED
            time.sleep(0.3)
    if left:
        err_console.print(f"[yellow]{len(left)} still running after {timeout:g}s[/]; see `ebbtide status`")
    return failed + len(left)


NOBODY_HINT = "ebbtide up"


def _nobody_working(services: Services, since: float) -> bool:
    """True once a grace period after `since` has passed with no live worker and no fleet decision."""
    from ebbtide.fleet.liveness import nobody_working

    now = services.clock.now()
    interval = services.settings.fleet.interval
    workers = services.catalog.list_workers()
    decisions = services.catalog.recent_decisions(limit=1)
    return nobody_working(now, since, [w.last_seen for w in workers], [d.at for d in decisions], interval)


# ebbtide status --------------------------------------------------------------------------------
def status(
    once: Annotated[bool, typer.Option("--once", help="print one frame and exit")] = False,
    every: Annotated[float, typer.Option("--every", help="refresh period in seconds")] = 2.0,
) -> None:
    """Live view: queue depth, each pool's desired/running/busy, each worker's job and progress."""
    from rich.live import Live

    from ebbtide.fleet.snapshot import take_snapshot
    from ebbtide.services import open_services

    services = open_services(settings())
    try:
        if once:
            console.print(render(take_snapshot(services)))
            return
        first = render(take_snapshot(services))
        with Live(first, console=console, auto_refresh=False) as live, contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(every)
                live.update(render(take_snapshot(services)), refresh=True)
    finally:
        services.close()


def render(snap: Snapshot) -> Group:
    q = snap.queue
    queue = Table(title="queue", title_justify="left")
    for col in ("visible", "in flight", "delayed", "dead", "oldest"):
        queue.add_column(col, justify="right")
    oldest = f"{q.oldest_age:.0f}s" if q.oldest_age is not None else "-"
    queue.add_row(str(q.visible), str(q.in_flight), str(q.delayed), str(q.dead), oldest)
    pools = Table(title="pools", title_justify="left")
    for col in ("pool", "provider", "desired", "running", "busy", "min-max", "cause", "last reason"):
        pools.add_column(col, justify="right" if col in ("desired", "running", "busy") else "left")
    for p in snap.pools:
        reason = (p.reason[:70] + "…") if len(p.reason) > 70 else p.reason
        if p.error:
            reason = f"[red]provider failing: {p.error[:90]}[/]"
        pools.add_row(p.name, p.provider, "-" if p.desired is None else str(p.desired), str(p.running),
                      str(p.busy), f"{p.minimum}-{p.maximum}", p.cause or "-", reason)
    workers = Table(title="workers", title_justify="left")
    for col in ("worker", "pool", "state", "video", "progress", "seen"):
        workers.add_column(col)
    for w in snap.workers:
        state = f"{w.state}" + (" (drain)" if w.drain else "")
        video = snap.videos.get(w.job_id, f"job {w.job_id}") if w.job_id else "-"
        workers.add_row(w.id, w.pool, state, video, f"{w.progress:.0%}" if w.job_id else "-",
                        f"{max(0.0, snap.at - w.last_seen):.0f}s ago")
    if not snap.workers:
        workers.add_row("(none)", "", "", "", "", "")
    return Group(queue, pools, workers)
