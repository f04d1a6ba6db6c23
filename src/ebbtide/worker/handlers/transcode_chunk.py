"""`transcode-chunk` jobs: every rung of one time range of a split source, published by the ledger.

The chunk reads only its range of the source (input seeking; over HTTP, range requests), writes
its segments under its own attempt prefix, and wins or loses like any attempt: a duplicate's
folder is deleted, a winner grows the live playlists and may queue the stitch.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ebbtide.catalog.states import JobState, MediaState
from ebbtide.errors import EbbtideError, NotFound
from ebbtide.worker import chunking
from ebbtide.worker.context import Cancelled, JobContext
from ebbtide.worker.handlers import Outcome
from ebbtide.worker.handlers.transcode import pool_speed

log = logging.getLogger(__name__)


def run(ctx: JobContext) -> Outcome:
    from ebbtide.media.chunked import encode_chunk
    from ebbtide.media.chunks import chunk_from_json, ladder_from_json
    from ebbtide.media.command import EncodeOptions, split_threads
    from ebbtide.media.limits import attempt_budget
    from ebbtide.media.pipeline import Progress, choose_encoder, cpu_count

    services, job, p = ctx.services, ctx.job, ctx.payload
    skipped = _skip_reason(ctx)
    if skipped:
        return Outcome(result={"skipped": skipped})
    ladder = ladder_from_json(p["ladder"])
    chunk = chunk_from_json(p["chunk"])
    encoder = "libx264" if p.get("encoder") == "libx264" else choose_encoder(str(p.get("encoder", "auto")))
    cores = services.settings.media.threads or cpu_count()
    opts = EncodeOptions(
        encoder=encoder,
        preset=str(p.get("preset", services.settings.media.preset)),
        threads=split_threads(ladder.rungs, cores) if encoder == "libx264" else None,
        storyboard=True,  # its part of the storyboard; stitch joins them
    )

    def on_progress(pr: Progress) -> None:
        ctx.progress(pr.fraction, pr.speed, pr.eta)

    out = ctx.job_dir / "chunk"
    stop = chunking.watch_job(services, job.id, ctx.cancel)
    try:
        source = chunking.source_input(services, str(p["source_key"]))
        length = (chunk.end if chunk.end is not None else ladder.duration) - chunk.start
        limits = services.settings.media.limits
        budget = attempt_budget(length, pool_speed(ctx), limits, ctx.attempt.number)
        manifest, used = encode_chunk(source, out, ladder, opts, chunk, on_progress, ctx.cancel,
                                      budget=budget, memory=limits.max_memory)  # fmt: skip
    except EbbtideError as e:  # the media's error names the chunk; the type (and its retry rule) stays
        e.message = f"{chunk.describe(ladder.duration)}: {e.message}"
        e.args = (e.message,)
        raise
    finally:
        stop.set()
    ctx.check_cancelled()
    root = str(p["root"])
    rel = f"{chunking.CHUNKS}/{chunk.index:03d}-{ctx.attempt.id}/"
    (out / chunking.MANIFEST).write_text(manifest.with_prefix(rel).to_json())
    result = {"prefix": root + rel, "encoder": used, "chunk": chunk.index}
    return publish_part(ctx, out, root + rel, result)


def _skip_reason(ctx: JobContext) -> str | None:
    """A part of a media that is gone or failed (another part failed for good) does no work."""
    try:
        media = ctx.services.catalog.get_media(str(ctx.job.media_id))
    except NotFound:
        return "the media was deleted"
    if media.state == MediaState.FAILED:
        return f"the media failed: {media.error}"
    return None


def publish_part(ctx: JobContext, out: Path, prefix: str, result: dict[str, Any]) -> Outcome:
    """Upload under the attempt's prefix, claim the ledger, and clean up or grow the set."""
    services, job = ctx.services, ctx.job
    try:
        services.store.put_folder(prefix, out)
        if ctx.cancel.is_set():
            raise Cancelled("cancelled before publishing")
        won = services.catalog.finish_attempt(job.id, ctx.attempt.id, JobState.SUCCEEDED, result=result)
    except BaseException:
        services.store.delete_prefix(prefix)
        raise
    if not won:
        services.store.delete_prefix(prefix)
        log.info(
            "duplicate part lost the ledger; removed its folder", extra={"job_id": job.id, "prefix": prefix}
        )
        return Outcome(result=result, recorded=True, won=False)
    if chunking._media_or_none(services, str(job.media_id)) is None:  # deleted while we uploaded
        services.store.delete_prefix(prefix)
        return Outcome(result=result, recorded=True, won=True)
    chunking.after_part(services, services.catalog.get_job(job.id), ctx.job_dir)
    return Outcome(result=result, recorded=True, won=True)
