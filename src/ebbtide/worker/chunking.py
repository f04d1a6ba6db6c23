"""Chunked transcodes on the worker side: the split, the parts' bookkeeping, progressive playlists.

A `transcode` of a long source does not encode it: it plans chunks (`media.chunks`) and queues one
`transcode-chunk` job per chunk plus one `transcode-audio` job (audio once, and the thumbnail),
then finishes. Every part is an ordinary job with its own lease, retries and ledger win. Each
winning part re-checks the set: when a prefix of chunks and the audio are in, it (re)writes the
growing `live/` playlists (EVENT) and the media becomes playable that far; when every part is
in, it queues one `stitch` job (a fixed job id, so two last-finishers queue it once).

Store layout of a chunked set, under the media's `hls/` root:
    x-<split job>/c/<chunk>-<attempt>/<rung>/seg_*.m4s  one folder per chunk attempt
    x-<split job>/a/<attempt>/audio/…, thumbnail.jpg    the audio job's attempt
    x-<split job>/live/master.m3u8, <rung>/index.m3u8   growing playlists (EVENT)
    x-<split job>/s-<attempt>/…                         the final playlists, published by stitch
Playlists point at segments with relative URIs inside the set, so nothing is copied.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ebbtide.catalog.records import Job, Media, Rendition
from ebbtide.catalog.states import JobState, MediaState, WorkerState
from ebbtide.errors import EbbtideError, NotFound
from ebbtide.fleet.split_goal import split_goal
from ebbtide.media.chunks import PoolCapacity, SplitGoal
from ebbtide.services import Services
from ebbtide.worker.intake import hls_root
from ebbtide.worker.messages import STITCH, TRANSCODE_AUDIO, TRANSCODE_CHUNK, JobMessage

log = logging.getLogger(__name__)

CHUNKS = "c"
AUDIO = "a"
LIVE = "live"
FINAL = "s-"
SET = "x-"
MANIFEST = "manifest.json"
THUMBNAIL = "thumbnail.jpg"
WATCH_PERIOD = 2.0  # s between checks that a part's job was not deleted under it


# ---- pure -----------------------------------------------------------------------------------------
def part_job_id(split_job_id: str, tag: str) -> str:
    return f"{split_job_id[:48]}-{tag}"


def set_root(media: Media, split_job_id: str) -> str:
    return f"{hls_root(media.owner_id, media.id)}{SET}{split_job_id[:48]}/"


# ---- the split ----------------------------------------------------------------------------------
def _speed(services: Services, pool: str, configured: float) -> float:
    """Measured media seconds per wall second (median of the recent winners), as the policy sees it."""
    import statistics

    try:
        recent = [v for v in services.catalog.recent_speeds(pool) if v > 0]
    except Exception:  # a catalog hiccup: plan with the configured guess
        recent = []
    return statistics.median(recent) if recent else configured


def capacity(services: Services, splitter_id: str | None = None) -> list[PoolCapacity]:
    """Free and launchable workers, from the catalog's heartbeats and the fleet's pools, with the
    prices and speeds the policy plans with. Workers of no configured pool (started by hand)
    count as free when idle. The splitter is not idle (it is running the split)."""
    live = [w for w in services.catalog.list_workers() if w.state != WorkerState.GONE]
    pools = services.settings.fleet.pools
    out = []
    for pool in pools:
        mine = [w for w in live if w.pool == pool.name]
        idle = sum(1 for w in mine if w.state == WorkerState.IDLE and w.id != splitter_id)
        launchable = 0 if pool.provider == "static" else max(0, pool.max - len(mine))
        price = 0.0 if pool.provider == "static" else pool.price_per_hour
        speed = _speed(services, pool.name, pool.speed)
        out.append(PoolCapacity(idle, launchable, pool.boot_time, speed, price))
    names = {p.name for p in pools}
    others = sum(
        1 for w in live if w.pool not in names and w.state == WorkerState.IDLE and w.id != splitter_id
    )
    if others:
        out.append(PoolCapacity(others, 0, 0.0, 1.0))
    return out


def goal_for(services: Services, job: Job, pool: str | None) -> SplitGoal:
    """The planner's goal: the configured policy's trade-off for this upload, split by a worker
    of `pool` (its speed and price)."""
    pools = services.settings.fleet.pools
    cfg = next((p for p in pools if p.name == pool), None)
    if cfg is None and pools:  # a worker of no configured pool: plan it as the slowest pool's
        cfg = min(pools, key=lambda p: p.speed)
    speed = _speed(services, cfg.name, cfg.speed) if cfg else 1.0
    price = cfg.price_per_hour if cfg and cfg.provider != "static" else 0.0
    age = max(0.0, services.clock.now() - job.created_at) if job.created_at else 0.0
    return split_goal(services.settings.fleet.policy, services.settings.media, age, speed, price)


def split(
    services: Services,
    job: Job,
    media: Media,
    source: str,
    pool: str | None = None,
    worker_id: str | None = None,
) -> dict[str, Any] | None:
    """Queue the parts of a long source; None when it is better encoded in one piece.

    `source` is a local path or a presigned URL: the probe runs in the capped child and, for a
    URL, reads through ranged GETs only what the demuxer asks for (the index, not the 4 GB)."""
    from ebbtide.media.chunks import (
        audio_share,
        chunk_to_json,
        ladder_to_json,
        last_chunk_weight,
        plan_chunks,
        plan_split,
    )
    from ebbtide.media.isolated import probe_isolated
    from ebbtide.media.ladder import plan_ladder
    from ebbtide.media.pipeline import choose_encoder

    cfg = services.settings.media
    if cfg.chunk_min_seconds <= 0:
        return None
    info = probe_isolated(source, cfg.limits)
    goal = goal_for(services, job, pool)
    plan = plan_split(info.duration, capacity(services, worker_id), goal)
    if plan.count <= 1:
        return None
    ladder = plan_ladder(info, cfg)
    encoder = choose_encoder(cfg.encoder)
    last = last_chunk_weight(plan.count, audio_share(ladder, encoder))
    chunks = plan_chunks(
        info.duration, ladder.fps, ladder.gop_frames, ladder.segment_seconds, plan.count, goal.first_weight,
        last_weight=last,
    )
    if len(chunks) <= 1:
        return None
    root = set_root(media, job.id)
    common = {
        "split_job": job.id, "root": root, "count": len(chunks), "ladder": ladder_to_json(ladder),
        "encoder": encoder, "preset": cfg.preset, "source_key": media.source_key,
        "width": info.width, "height": info.height,
    }  # fmt: skip
    parts: list[tuple[str, str, dict[str, Any], float]] = [
        (part_job_id(job.id, "aud"), TRANSCODE_AUDIO, common, 1.0)
    ]
    for c in chunks:
        length = (c.end if c.end is not None else info.duration) - c.start
        parts.append(
            (
                part_job_id(job.id, f"c{c.index:03d}"),
                TRANSCODE_CHUNK,
                {**common, "chunk": chunk_to_json(c)},
                length,
            )
        )
    for job_id, kind, payload, work in parts:
        _queue(services, job_id, kind, payload, media, work)
    log.info(
        "media split",
        extra={"media_id": media.id, "job_id": job.id, "chunks": len(chunks), "workers": plan.workers,
               "estimated_ready": round(plan.ready), "estimated_cost": round(plan.cost, 4)},
    )  # fmt: skip
    return {"split": len(chunks), "root": root}


def _queue(
    services: Services, job_id: str, kind: str, payload: dict[str, Any], media: Media, work: float
) -> None:
    """Create and send a part once: a re-run split (or two last finishers) finds it already there."""
    try:
        services.catalog.get_job(job_id)
        return
    except NotFound:
        pass
    try:
        services.catalog.create_job(
            kind, payload, owner_id=media.owner_id, media_id=media.id, work_seconds=work, job_id=job_id
        )
    except EbbtideError as e:
        if "exists" not in e.message:
            raise
        return
    services.queue.send(JobMessage(job_id, kind, media.id).body(), dedup_id=job_id)


# ---- parts finishing ------------------------------------------------------------------------------
def source_input(services: Services, key: str) -> str:
    """What ffmpeg opens: the file itself for the local store, else a presigned GET that ffmpeg
    reads with HTTP range requests (so a chunk fetches only its part)."""
    path_for = getattr(services.store, "path_for", None)
    if callable(path_for):
        return str(path_for(key))
    return services.store.signed_get_url(key, services.settings.store.signed_url_ttl)


def watch_job(services: Services, job_id: str, cancel: threading.Event) -> threading.Event:
    """Set `cancel` if the job ends under us (its media was deleted); returns the watcher's stop event."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(WATCH_PERIOD) and not cancel.is_set():
            try:
                state = services.catalog.get_job(job_id).state
            except NotFound:
                state = JobState.FAILED
            except Exception:  # a catalog hiccup is not a reason to stop an encode
                continue
            if state in (JobState.FAILED, JobState.DEAD, JobState.SUCCEEDED):
                log.info("part ended elsewhere (deleted?); cancelling", extra={"job_id": job_id})
                cancel.set()

    threading.Thread(target=loop, name=f"ebbtide-watch-{job_id[:8]}", daemon=True).start()
    return stop


@dataclass(frozen=True)
class SetState:
    count: int
    chunk_prefixes: dict[int, str]  # index -> winning prefix, relative to the set root
    audio_prefix: str | None
    audio_done: bool
    has_audio: bool


def set_state(services: Services, media_id: str, payload: dict[str, Any]) -> SetState:
    split_job = str(payload["split_job"])
    root = str(payload["root"])
    chunks: dict[int, str] = {}
    audio_prefix: str | None = None
    audio_done = False
    for j in services.catalog.list_jobs(media_id=media_id, limit=10_000):
        if j.payload.get("split_job") != split_job or j.state != JobState.SUCCEEDED:
            continue
        prefix = str(j.result.get("prefix", ""))
        rel = prefix[len(root) :] if prefix.startswith(root) else ""
        if j.kind == TRANSCODE_CHUNK and rel:
            chunks[int(j.payload["chunk"]["index"])] = rel
        elif j.kind == TRANSCODE_AUDIO and rel:
            audio_prefix, audio_done = rel, True
    has_audio = bool(payload["ladder"].get("audio"))
    return SetState(int(payload["count"]), chunks, audio_prefix, audio_done, has_audio)


def read_manifest(services: Services, root: str, rel: str) -> Any:
    from ebbtide.media.stitch import Manifest

    return Manifest.from_json(services.store.get_bytes(root + rel + MANIFEST)).with_prefix(rel)


def after_part(services: Services, job: Job, workdir: Path) -> None:
    """A part won: grow the live playlists; queue the stitch when every part is in."""
    media_id = job.media_id
    if media_id is None:
        return
    p = job.payload
    try:
        st = grow_live(services, media_id, p, workdir)
    except EbbtideError as e:  # a viewer convenience: never fail the part that already won
        log.warning("live playlists not written", extra={"media_id": media_id, "error": e.message})
        st = set_state(services, media_id, p)
    media = _media_or_none(services, media_id)
    all_in = len(st.chunk_prefixes) == st.count and (st.audio_done or not st.has_audio)
    if all_in and media is not None:
        _queue(services, part_job_id(str(p["split_job"]), "stitch"), STITCH, p, media, 1.0)


LIVE_REWRITES = 3


def grow_live(
    services: Services, media_id: str, p: dict[str, Any], workdir: Path, st: SetState | None = None
) -> SetState:
    """Write the live (EVENT) playlists over the ready prefix of chunks and point the media at them.

    Parts finish concurrently, and the playlists in the store are overwritten, not merged: a part
    that read the set earlier but writes later would shrink the playlist viewers poll (illegal in
    an EVENT playlist; hls.js stalls), or take away the ENDLIST the stitch wrote. The catalog's
    `set_playable` only grows, so when it refuses ours, the set is read again and written again.
    `st` is the set as the caller read it (read now if None).
    """
    from ebbtide.media.chunks import ladder_from_json
    from ebbtide.media.stitch import ready_prefix

    ladder = ladder_from_json(p["ladder"])
    root = str(p["root"])
    st = st or set_state(services, media_id, p)
    for _ in range(LIVE_REWRITES):
        ready = ready_prefix(list(st.chunk_prefixes), st.count)
        if ready == 0 or (st.has_audio and not st.audio_done):
            return st
        parts = [read_manifest(services, root, st.chunk_prefixes[i]) for i in range(ready)]
        audio = read_manifest(services, root, st.audio_prefix) if st.has_audio and st.audio_prefix else None
        media = _media_or_none(services, media_id)
        if media is None or media.state in (MediaState.FAILED, MediaState.COMPLETE):
            if media is not None and media.state == MediaState.COMPLETE and ready == st.count:
                # the stitch published (and wrote the live ENDLIST) before we wrote: keep it ended
                write_playlists(services, media_id, root, LIVE, ladder, parts, audio, workdir, final=True)
            return st
        seconds = sum(x.rendition(ladder.rungs[0].name).duration for x in parts)
        if media.playable_seconds > seconds + 1e-6:  # stale: viewers already see more
            st = set_state(services, media_id, p)
            continue
        renditions = write_playlists(
            services, media_id, root, LIVE, ladder, parts, audio, workdir, final=False
        )
        if services.catalog.set_playable(media_id, root, root + LIVE + "/master.m3u8", seconds, renditions):
            return st
        now = _media_or_none(services, media_id)
        if now is None or (now.state != MediaState.COMPLETE and now.playable_seconds <= seconds + 1e-6):
            return st  # someone wrote the same prefix: ours is identical
        st = set_state(services, media_id, p)  # someone is further (or done): write again from now
    return st


def _media_or_none(services: Services, media_id: str) -> Media | None:
    try:
        return services.catalog.get_media(media_id)
    except NotFound:
        return None


def write_playlists(
    services: Services,
    media_id: str,
    root: str,
    folder: str,
    ladder: Any,
    parts: list[Any],
    audio: Any,
    workdir: Path,
    *,
    final: bool,
) -> list[Rendition]:
    """Write the playlists over `parts` to `root/folder/`; returns the renditions they declare."""
    from ebbtide.media.chunked import stitch_folder
    from ebbtide.media.stitch import master_playlist

    local = workdir / "playlists"
    stitch_folder(local, folder, ladder, parts, audio, final=final)
    services.store.put_folder(root + folder + "/", local / folder)
    _, declared = master_playlist(ladder, parts, audio)
    renditions = [replace(r, playlist=f"{folder}/{r.playlist}") for r in declared]
    return renditions
