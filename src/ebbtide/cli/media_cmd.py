"""`ebbtide probe INPUT` and `ebbtide transcode INPUT OUTDIR`."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from ebbtide.cli.context import console, settings


def register(app: typer.Typer) -> None:
    @app.command("probe")
    def probe_cmd(
        input: Annotated[Path, typer.Argument(help="a video file")],
        plan: Annotated[
            bool, typer.Option("--plan/--no-plan", help="also show the ladder it would get")
        ] = True,
    ) -> None:
        """Show what ebbtide sees in a video, and the HLS ladder it would encode."""
        from ebbtide.media.ladder import plan_ladder
        from ebbtide.media.probe import probe

        info = probe(input)
        t = Table(title=str(input), show_header=False)
        t.add_column("field", style="bold")
        t.add_column("value")
        rows = {
            "duration": f"{info.duration:.3f} s",
            "size": f"{info.width}x{info.height}" + (f" (rotated {info.rotation}°)" if info.rotation else ""),
            "frame rate": f"{info.fps:g} fps" + (" (variable)" if info.vfr else ""),
            "pixel format": f"{info.pix_fmt} ({info.bit_depth}-bit)",
            "video codec": info.video_codec,
            "audio": f"{info.audio_codec} {info.audio_channels} ch {info.audio_sample_rate} Hz"
            if info.has_audio
            else "none",
            "bitrate": f"{info.bitrate / 1000:.0f} kb/s",
        }
        for k, v in rows.items():
            t.add_row(k, v)
        console.print(t)
        if not plan:
            return
        ladder = plan_ladder(info, settings().media)
        lt = Table(title=f"ladder · {float(ladder.fps):g} fps · GOP {ladder.gop_frames} frames")
        for col in ("rung", "size", "bitrate", "maxrate", "bufsize"):
            lt.add_column(col, justify="right" if col != "rung" else "left")
        for r in ladder.rungs:
            lt.add_row(
                r.name,
                f"{r.width}x{r.height}",
                f"{r.bitrate_kbps}k",
                f"{r.maxrate_kbps}k",
                f"{r.bufsize_kbps}k",
            )
        if ladder.audio:
            lt.add_row("audio", f"AAC-LC {ladder.audio.channels} ch", f"{ladder.audio.bitrate_kbps}k", "", "")
        console.print(lt)

    @app.command("transcode")
    def transcode_cmd(
        input: Annotated[Path, typer.Argument(help="a video file")],
        outdir: Annotated[Path, typer.Argument(help="folder for master.m3u8, renditions, thumbnail")],
    ) -> None:
        """Encode a video into an HLS ladder on this machine (no queue involved)."""
        from ebbtide.media.pipeline import transcode
        from ebbtide.media.probe import probe
        from ebbtide.media.progress import Progress as MediaProgress

        cfg = settings().media
        probe(input)  # a missing or unreadable file is one error line, before any progress bar
        cancel = threading.Event()
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[speed]}"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        ) as bar:
            task = bar.add_task(input.name, total=1.0, speed="")

            def on_progress(p: MediaProgress) -> None:
                bar.update(task, completed=p.fraction, speed=f"{p.speed:.2f}x" if p.speed else "")

            try:
                result = transcode(input, outdir, cfg, on_progress=on_progress, cancel=cancel)
            except KeyboardInterrupt:
                cancel.set()
                raise
        t = Table(title=f"{outdir / result.master} · {result.duration:.1f} s · {result.encoder}")
        for col in ("rendition", "size", "bandwidth", "average", "playlist"):
            t.add_column(col)
        for r in result.renditions:
            t.add_row(
                r.name, f"{r.width}x{r.height}", f"{r.bandwidth / 1000:.0f} kb/s",
                f"{r.average_bandwidth / 1000:.0f} kb/s", r.playlist,
            )  # fmt: skip
        console.print(t)
        speed = result.duration / result.wall_seconds if result.wall_seconds else 0
        sb = f", storyboard {result.storyboard}" if result.storyboard else ""
        console.print(
            f"[green]done[/] in {result.wall_seconds:.1f} s ({speed:.2f}x realtime); "
            f"thumbnail {result.thumbnail}{sb}"
        )
