"""Inputs and outputs of generic jobs: `jobs/<id>/input/` in, `jobs/<id>/output/` out."""

from __future__ import annotations

from pathlib import Path

from ebbtide.worker.context import JobContext
from ebbtide.worker.status import input_prefix, output_prefix


def prepare(ctx: JobContext) -> tuple[Path, Path]:
    """Download the job's inputs; returns (input dir, output dir), both under the job dir."""
    inp, out = ctx.job_dir / "input", ctx.job_dir / "output"
    inp.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    store = ctx.services.store
    if store.list(input_prefix(ctx.job.id)):
        store.get_folder(input_prefix(ctx.job.id), inp)
    return inp, out


def publish_outputs(ctx: JobContext, out: Path) -> tuple[str, ...]:
    """Upload what the job wrote to its output dir. Each attempt overwrites the same keys, so a
    retried job leaves one set of outputs."""
    if not out.is_dir() or not any(p.is_file() for p in out.rglob("*")):
        return ()
    return tuple(sorted(ctx.services.store.put_folder(output_prefix(ctx.job.id), out)))
