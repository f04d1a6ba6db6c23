"""`stitch` jobs: the final playlists over every chunk, published atomically through the ledger.

Reads only the parts' manifests (kilobytes) and their storyboard sprites (one small JPEG per
chunk, joined into the set's storyboard), writes `s-<attempt>/` playlists (VOD, ENDLIST) and
switches the media to them in the same transaction that finishes the job. The live playlists get
their ENDLIST too, so a viewer already watching sees the end instead of waiting for more.
"""

from __future__ import annotations

import logging
from typing import Any

from ebbtide.errors import NotFound, Transient
from ebbtide.worker import chunking
from ebbtide.worker.context import JobContext
from ebbtide.worker.handlers import Outcome

log = logging.getLogger(__name__)


class PartsMissing(Transient):
    """Stitch ran before every part's win was visible; the retry will find them."""


def _storyboard(ctx: JobContext, root: str, folder: str, parts: list[Any]) -> str | None:
    """Join the chunks' storyboard sprites (a few small objects) into the set's; its key or None."""
    from ebbtide.media.chunked import join_storyboards
    from ebbtide.media.command import STORYBOARD

    work = ctx.job_dir / "storyboard"
    work.mkdir(parents=True, exist_ok=True)
    strips = []
    for p in parts:
        if p.storyboard_frames > 0:
            local = work / f"{p.index:05d}.jpg"
            ctx.services.store.get_file(f"{root}{p.prefix}{STORYBOARD}", local)
            strips.append((local, p.storyboard_frames))
    out = work / STORYBOARD
    if not join_storyboards(strips, out, ctx.cancel):
        return None
    key = f"{root}{folder}/{STORYBOARD}"
    ctx.services.store.put_file(key, out, "image/jpeg")
    return key


def run(ctx: JobContext) -> Outcome:
    from ebbtide.media.chunks import ladder_from_json

    services, job, p = ctx.services, ctx.job, ctx.payload
    try:
        media = services.catalog.get_media(str(job.media_id))
    except NotFound:
        return Outcome(result={"skipped": "the media was deleted"})
    st = chunking.set_state(services, media.id, p)
    missing = [i for i in range(st.count) if i not in st.chunk_prefixes]
    if missing or not st.audio_prefix:
        raise PartsMissing(
            f"parts not finished: chunks {missing}, audio {'in' if st.audio_prefix else 'missing'}"
        )
    ladder = ladder_from_json(p["ladder"])
    root = str(p["root"])
    parts = [chunking.read_manifest(services, root, st.chunk_prefixes[i]) for i in range(st.count)]
    audio = chunking.read_manifest(services, root, st.audio_prefix) if st.has_audio else None
    folder = f"{chunking.FINAL}{ctx.attempt.id}"
    try:
        storyboard = _storyboard(ctx, root, folder, parts)
        renditions = chunking.write_playlists(
            services, media.id, root, folder, ladder, parts, audio, ctx.job_dir, final=True
        )
        won = services.catalog.publish_media(
            media.id, job.id, ctx.attempt.id, root,
            master_key=f"{root}{folder}/master.m3u8", renditions=renditions,
            thumbnail_key=f"{root}{st.audio_prefix}{chunking.THUMBNAIL}", storyboard_key=storyboard,
            duration=ladder.duration, width=p.get("width"), height=p.get("height"),
        )  # fmt: skip
    except BaseException:
        services.store.delete_prefix(f"{root}{folder}/")
        raise
    if not won:
        services.store.delete_prefix(f"{root}{folder}/")
        return Outcome(result={"prefix": root}, recorded=True, won=False)
    chunking.write_playlists(
        services, media.id, root, chunking.LIVE, ladder, parts, audio, ctx.job_dir, final=True
    )
    log.info("chunked media published", extra={"media_id": media.id, "chunks": st.count})
    return Outcome(result={"prefix": root, "master": f"{folder}/master.m3u8"}, recorded=True, won=True)
