"""`transcode` jobs: the upload → an HLS ladder + thumbnail + storyboard, published atomically.

Outputs go under an attempt prefix (`…/hls/<attempt_id>/`), never over a live set; the catalog's
`publish_media` then switches the media to that prefix and finishes the job in one transaction.
An attempt that loses the ledger deletes its own prefix; one that wins deletes the prefixes that
crashed attempts left behind, so each media ends with exactly one HLS set.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ebbtide.errors import BackendUnavailable, EbbtideError
from ebbtide.storage.sources import is_location, open_sources, parse_location
from ebbtide.worker import chunking
from ebbtide.worker.context import Cancelled, JobContext
from ebbtide.worker.handlers import Outcome
from ebbtide.worker.intake import hls_root, safe_filename

log = logging.getLogger(__name__)


def run(ctx: JobContext) -> Outcome:
    from ebbtide.media.pipeline import Progress, transcode  # PyAV and ffmpeg: loaded on first use

    services, job = ctx.services, ctx.job
    if not job.media_id:
        raise EbbtideError(f"transcode job {job.id} names no media", hint="submit uploads with submit_file")
    media = services.catalog.get_media(job.media_id)
    # The name only labels messages: the demuxer is chosen from the bytes (media/containers.py).
    src = ctx.job_dir / "source" / safe_filename(Path(media.source_key).name)
    src.parent.mkdir(parents=True, exist_ok=True)
    if is_location(media.source_key):  # a source in place, in the user's own bucket: one piece
        open_sources(services.settings.sources).get_file(parse_location(media.source_key), src)
        parts = None
    else:
        # a local path, or a presigned URL the capped probe reads by ranges (the index, not the
        # whole source); the source is downloaded only if it is then encoded in one piece
        source = chunking.source_input(services, media.source_key)
        parts = chunking.split(services, job, media, source, ctx.pool, ctx.attempt.worker_id)
    if parts is not None:  # long: chunk jobs do the work, in parallel
        return Outcome(result=parts)
    if not src.exists():
        services.store.get_file(media.source_key, src)
    ctx.check_cancelled()

    def on_progress(p: Progress) -> None:
        ctx.progress(p.fraction, p.speed, p.eta)

    out = ctx.job_dir / "hls"
    result = transcode(
        src, out, services.settings.media, on_progress=on_progress, cancel=ctx.cancel, speed=pool_speed(ctx),
        attempt=ctx.attempt.number,
    )
    ctx.check_cancelled()
    src.unlink(missing_ok=True)  # free the disk before the upload copies

    root = hls_root(media.owner_id, media.id)
    prefix = f"{root}{ctx.attempt.id}/"
    try:
        services.store.put_folder(prefix, out)
        if ctx.cancel.is_set():  # lost the lease or stopping: do not publish half-decided work
            raise Cancelled("cancelled before publishing")
        won = services.catalog.publish_media(
            media.id, job.id, ctx.attempt.id, prefix,
            master_key=prefix + result.master,
            renditions=result.renditions,
            thumbnail_key=prefix + result.thumbnail,
            storyboard_key=prefix + result.storyboard if result.storyboard else None,
            duration=result.duration, width=result.probe.width, height=result.probe.height,
        )  # fmt: skip
    except BaseException:
        services.store.delete_prefix(prefix)  # never leave a half-uploaded set behind
        raise
    if not won:
        services.store.delete_prefix(prefix)
        log.info("another attempt published first; removed ours", extra={"job_id": job.id, "prefix": prefix})
    else:
        _remove_stale_sets(ctx, root, prefix)
    return Outcome(
        result={"prefix": prefix, "encoder": result.encoder, "wall_seconds": round(result.wall_seconds, 3)},
        recorded=True,
        won=won,
    )


def pool_speed(ctx: JobContext) -> float:
    """The speed the time budget assumes (media s per wall s): the pool's configured speed (the
    slowest pool's if unknown), or its recently measured speed when slower (`limits.budget_speed`)."""
    from ebbtide.media.limits import budget_speed

    pools = ctx.services.settings.fleet.pools
    mine = [p.speed for p in pools if p.name == ctx.pool]
    configured = mine[0] if mine else min((p.speed for p in pools), default=1.0)
    try:
        measured = ctx.services.catalog.recent_speeds(pool=ctx.pool)
    except BackendUnavailable:  # the configured speed still bounds the run
        measured = []
    return budget_speed(configured, measured)


def _remove_stale_sets(ctx: JobContext, root: str, keep: str) -> None:
    """Prefixes of attempts that died mid-upload. A live loser deletes its own when it loses."""
    store = ctx.services.store
    stale = {
        root + info.key[len(root) :].split("/", 1)[0] + "/"
        for info in store.list(root)
        if not info.key.startswith(keep)
    }
    for prefix in stale:
        store.delete_prefix(prefix)
    if stale:
        log.info("removed stale HLS sets", extra={"media_id": ctx.job.media_id, "count": len(stale)})
