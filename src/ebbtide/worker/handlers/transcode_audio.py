"""`transcode-audio` jobs: a split source's audio, encoded once for the whole file, and its thumbnail.

One AAC encode of the whole track means no priming gaps where the video chunks meet.
"""

from __future__ import annotations

from ebbtide.worker import chunking
from ebbtide.worker.context import JobContext
from ebbtide.worker.handlers import Outcome
from ebbtide.worker.handlers.transcode import pool_speed
from ebbtide.worker.handlers.transcode_chunk import _skip_reason, publish_part


def run(ctx: JobContext) -> Outcome:
    from ebbtide.media.chunked import encode_audio
    from ebbtide.media.chunks import ladder_from_json
    from ebbtide.media.command import thumbnail_command
    from ebbtide.media.errors import MediaError
    from ebbtide.media.ffmpeg import run_ffmpeg
    from ebbtide.media.limits import time_budget
    from ebbtide.media.stitch import Manifest

    services, job, p = ctx.services, ctx.job, ctx.payload
    skipped = _skip_reason(ctx)
    if skipped:
        return Outcome(result={"skipped": skipped})
    ladder = ladder_from_json(p["ladder"])
    source = chunking.source_input(services, str(p["source_key"]))
    out = ctx.job_dir / "audio"
    stop = chunking.watch_job(services, job.id, ctx.cancel)
    try:
        if ladder.audio is not None:
            limits = services.settings.media.limits
            timeout = time_budget(ladder.duration, pool_speed(ctx), limits, ctx.attempt.number)
            manifest = encode_audio(
                source, out, ladder, ctx.cancel, timeout=timeout, memory=limits.max_memory
            )
        else:
            out.mkdir(parents=True, exist_ok=True)
            manifest = Manifest(-1, "", ())
        thumb = out / chunking.THUMBNAIL
        args = thumbnail_command(thumb, thumb, ladder)
        args[args.index("-i") + 1] = source  # a URL must not go through Path()
        run_ffmpeg(args, cancel=ctx.cancel, what="thumbnail", timeout=120)
        if not thumb.is_file() or thumb.stat().st_size == 0:
            raise MediaError("no thumbnail was produced", hint="the video may hold no decodable frames")
    finally:
        stop.set()
    ctx.check_cancelled()
    root = str(p["root"])
    rel = f"{chunking.AUDIO}/{ctx.attempt.id}/"
    (out / chunking.MANIFEST).write_text(manifest.with_prefix(rel).to_json())
    return publish_part(
        ctx, out, root + rel, {"prefix": root + rel, "thumbnail": root + rel + chunking.THUMBNAIL}
    )
