"""Chunked transcodes through real workers: split, parts, progressive playlists, stitch, faults."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import m3u8
import psutil
import pytest
from worker_helpers import WorkerThread, stop_all, wait_for

from ebbtide.catalog.states import JobState, MediaState
from ebbtide.media.samples import generate_clip
from ebbtide.worker.context import JobContext
from ebbtide.worker.handlers import transcode, transcode_chunk
from ebbtide.worker.intake import media_prefix, submit_file
from ebbtide.worker.messages import STITCH, TRANSCODE_AUDIO, TRANSCODE_CHUNK

SECONDS = 12
CHUNKED = {"chunk_min_seconds": 3, "max_chunks": 3}
# a slow pool (0.02x realtime), so the planner finds splitting a 12 s clip worth it
POOLS = {"pools": [{"name": "local", "provider": "local", "max": 3, "boot_time": 0, "speed": 0.02}]}


@pytest.fixture()
def clip12(tmp_path: Path) -> Path:
    return generate_clip(tmp_path / "match.mp4", seconds=SECONDS, width=320, height=240)


def _jobs(services: Any, media_id: str, kind: str) -> list[Any]:
    return [j for j in services.catalog.list_jobs(media_id=media_id) if j.kind == kind]


def test_long_source_is_split_encoded_in_parts_playable_early_then_published(
    make_env: Callable[..., Any], clip12: Path
) -> None:
    _, services, _ = make_env(media=CHUNKED, fleet=POOLS)
    owner = services.catalog.create_user("ada")
    media = submit_file(services, clip12, owner.id, title="Match")
    seen: list[tuple[str, float, str | None]] = []
    done = threading.Event()

    def watch() -> None:  # what a viewer polling the API would see
        while not done.is_set():
            m = services.catalog.get_media(media.id)
            seen.append((str(m.state), m.playable_seconds, m.master_key))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    worker = WorkerThread(services).start()  # one worker: parts run in queue order, deterministically
    try:
        wait_for(lambda: services.catalog.get_media(media.id).state == MediaState.COMPLETE, 120, "complete")
    finally:
        done.set()
        stop_all([worker])
    m = services.catalog.get_media(media.id)
    split = services.catalog.get_job(m.job_id or "") if m.job_id else None
    chunks = _jobs(services, media.id, TRANSCODE_CHUNK)
    assert len(chunks) == 3 and all(j.state == JobState.SUCCEEDED for j in chunks)
    assert len(_jobs(services, media.id, TRANSCODE_AUDIO)) == 1
    assert [j.state for j in _jobs(services, media.id, STITCH)] == [JobState.SUCCEEDED]
    assert split is not None and split.kind == STITCH  # the stitch published the media
    assert m.playable_seconds == pytest.approx(SECONDS, abs=0.1)

    # playable before the end: a growing EVENT playlist, seconds only going up
    early = [(p, k) for s, p, k in seen if s != "complete" and p > 0]
    assert early and min(p for p, _ in early) < SECONDS - 1
    grow = [p for _, p in early]
    assert grow == sorted(grow)
    assert all(k and "/live/master.m3u8" in k for _, k in early)

    assert m.master_key and m.published_prefix and m.master_key.startswith(m.published_prefix)
    master = m3u8.loads(services.store.get_bytes(m.master_key).decode())
    assert len(master.playlists) == 2 and all(p.stream_info.average_bandwidth for p in master.playlists)
    for r in m.renditions:
        text = services.store.get_bytes(m.published_prefix + r.playlist).decode()
        pl = m3u8.loads(text)
        assert pl.is_endlist and pl.playlist_type == "vod" and text.count("#EXT-X-MAP") == 1
        assert abs(sum(s.duration for s in pl.segments) - SECONDS) <= 0.1
        # every segment it names exists in the store (relative URIs inside the set)
        base = m.published_prefix + r.playlist.rsplit("/", 1)[0] + "/"
        for s in pl.segments:
            key = _norm(base + str(s.uri))
            assert services.store.exists(key), key
    live = m3u8.loads(services.store.get_bytes(m.published_prefix + "live/240p/index.m3u8").decode())
    assert live.is_endlist  # a viewer of the growing playlist sees the end
    assert m.thumbnail_key and services.store.exists(m.thumbnail_key)
    # the storyboard, as an unchunked encode lays it out: frames at 0 and 10 s, from the chunks
    # they fall in (the first, and a later one)
    assert m.storyboard_key and m.storyboard_key.startswith(m.published_prefix + "s-")
    frames = [p.storyboard_frames for p in _manifests(services, m)]
    assert frames[0] == 1 and sum(frames) == 2, frames
    assert _jpeg_size(services.store.get_bytes(m.storyboard_key)) == (2 * 160, 120)


def _jpeg_size(data: bytes) -> tuple[int, int]:
    from ebbtide.media.ffmpeg import ffmpeg_path

    p = subprocess.run([ffmpeg_path(), "-hide_banner", "-f", "image2pipe", "-i", "-"], input=data,
                       capture_output=True, timeout=60)  # fmt: skip
    w, h = re.search(rb", (\d+)x(\d+)", p.stderr).groups()  # type: ignore[union-attr]
    return int(w), int(h)


def _manifests(services: Any, m: Any) -> list[Any]:
    from ebbtide.media.stitch import MANIFEST, Manifest

    chunks = sorted(_jobs(services, m.id, TRANSCODE_CHUNK), key=lambda j: j.payload["chunk"]["index"])
    return [Manifest.from_json(services.store.get_bytes(j.result["prefix"] + MANIFEST)) for j in chunks]


def _norm(key: str) -> str:
    import posixpath

    return posixpath.normpath(key)


def test_a_short_clip_is_not_split(make_env: Callable[..., Any], tmp_path: Path) -> None:
    _, services, _ = make_env(media={"chunk_min_seconds": 3}, fleet=POOLS)
    owner = services.catalog.create_user("ada")
    media = submit_file(
        services, generate_clip(tmp_path / "c.mp4", seconds=4, width=320, height=240), owner.id
    )
    worker = WorkerThread(services).start()
    try:
        wait_for(lambda: services.catalog.get_media(media.id).state == MediaState.COMPLETE, 60, "complete")
    finally:
        stop_all([worker])
    assert _jobs(services, media.id, TRANSCODE_CHUNK) == []


def _split(services: Any, owner_id: str, clip: Path) -> tuple[Any, list[Any]]:
    """Run only the split (the transcode job's handler), as a worker would."""
    media = submit_file(services, clip, owner_id)
    job = services.catalog.get_job(media.job_id)
    att = services.catalog.start_attempt(job.id, "w-split", 1)
    ctx = JobContext(services, services.catalog.get_job(job.id), att, Path(services.settings.data_dir) / "t0",
                     threading.Event())  # fmt: skip
    ctx.job_dir.mkdir(parents=True, exist_ok=True)
    out = transcode.run(ctx)
    assert out.result["split"] == 3
    services.catalog.finish_attempt(job.id, att.id, JobState.SUCCEEDED, result=out.result)
    return media, sorted(_jobs(services, media.id, TRANSCODE_CHUNK), key=lambda j: j.id)


def test_a_duplicate_chunk_attempt_loses_and_leaves_nothing(
    make_env: Callable[..., Any], clip12: Path, tmp_path: Path
) -> None:
    _, services, _ = make_env(media=CHUNKED, fleet=POOLS)
    owner = services.catalog.create_user("ada")
    media, chunks = _split(services, owner.id, clip12)
    c1 = chunks[1]
    a = services.catalog.start_attempt(c1.id, "w-a", 1)
    b = services.catalog.start_attempt(c1.id, "w-b", 2)  # a lapsed lease: delivered twice
    outs = []
    for att, d in ((a, "ja"), (b, "jb")):
        ctx = JobContext(services, services.catalog.get_job(c1.id), att, tmp_path / d, threading.Event())
        ctx.job_dir.mkdir()
        outs.append(transcode_chunk.run(ctx))
    assert [o.won for o in outs] == [True, False]
    winners = [x for x in services.catalog.attempts(c1.id) if x.won]
    assert [x.id for x in winners] == [a.id]
    keys = [i.key for i in services.store.list(media_prefix(owner.id, media.id))]
    assert any(f"/c/001-{a.id}/" in k for k in keys) and not any(f"/c/001-{b.id}/" in k for k in keys)


def _run_part(services: Any, job: Any, d: Path) -> Any:
    from ebbtide.worker.handlers import stitch, transcode_audio

    handler = {TRANSCODE_CHUNK: transcode_chunk, TRANSCODE_AUDIO: transcode_audio, STITCH: stitch}[job.kind]
    att = services.catalog.start_attempt(job.id, "w-" + d.name, 1)
    ctx = JobContext(services, services.catalog.get_job(job.id), att, d, threading.Event())
    ctx.job_dir.mkdir(parents=True)
    return handler.run(ctx)


def test_a_slower_writer_never_shrinks_the_live_playlist_nor_unends_it(
    make_env: Callable[..., Any], clip12: Path, tmp_path: Path
) -> None:
    """Parts finish concurrently: one that read the set when only chunk 1 was in, but writes its
    live playlists last, must not take away the chunks (or the ENDLIST) viewers already see."""
    from dataclasses import replace

    from ebbtide.worker import chunking

    _, services, _ = make_env(media=CHUNKED, fleet=POOLS)
    owner = services.catalog.create_user("ada")
    media, chunks = _split(services, owner.id, clip12)
    (audio,) = _jobs(services, media.id, TRANSCODE_AUDIO)
    for i, job in enumerate([audio, *chunks]):
        assert _run_part(services, job, tmp_path / f"p{i}").won
    p = chunks[0].payload
    full = chunking.set_state(services, media.id, p)
    stale = replace(full, chunk_prefixes={0: full.chunk_prefixes[0]})  # what the slow writer read

    def live_seconds() -> tuple[float, bool]:
        key = p["root"] + "live/240p/index.m3u8"
        pl = m3u8.loads(services.store.get_bytes(key).decode())
        return sum(s.duration for s in pl.segments), pl.is_endlist

    assert live_seconds() == (pytest.approx(SECONDS, abs=0.1), False)
    chunking.grow_live(services, media.id, p, tmp_path / "slow", stale)
    assert live_seconds() == (pytest.approx(SECONDS, abs=0.1), False)  # rewritten from the fresh set
    assert services.catalog.get_media(media.id).playable_seconds == pytest.approx(SECONDS, abs=0.1)

    (stitch_job,) = _jobs(services, media.id, STITCH)
    assert _run_part(services, stitch_job, tmp_path / "st").won
    chunking.grow_live(services, media.id, p, tmp_path / "slow2", stale)
    assert live_seconds() == (pytest.approx(SECONDS, abs=0.1), True)  # still ended


def test_a_chunk_that_fails_for_good_fails_the_media_with_its_range(
    make_env: Callable[..., Any], clip12: Path
) -> None:
    _, services, _ = make_env(media=CHUNKED, fleet=POOLS, queue={"max_receives": 1})
    owner = services.catalog.create_user("ada")
    media, _chunks = _split(services, owner.id, clip12)
    services.store.delete(media.source_key)  # every read of the source now fails
    worker = WorkerThread(services).start()
    try:
        m = wait_for(
            lambda: (x := services.catalog.get_media(media.id)).state == MediaState.FAILED and x, 60, "failed"
        )
    finally:
        stop_all([worker])
    assert m.error and ("chunk " in m.error or "audio" in m.error or "thumbnail" in m.error), m.error
    assert _jobs(services, media.id, STITCH) == []


def test_delete_mid_run_cancels_every_chunk_and_leaves_no_objects(
    make_env: Callable[..., Any], tmp_path: Path
) -> None:
    _, services, _ = make_env(media={**CHUNKED, "preset": "veryslow"}, fleet=POOLS)
    owner = services.catalog.create_user("ada")
    clip = generate_clip(tmp_path / "long.mp4", seconds=SECONDS, width=320, height=240)
    media = submit_file(services, clip, owner.id)
    workers = [WorkerThread(services).start() for _ in range(2)]
    try:
        running = wait_for(
            lambda: [j for j in _jobs(services, media.id, TRANSCODE_CHUNK) if j.state == JobState.RUNNING],
            60, "a running chunk",
        )  # fmt: skip
        services.catalog.delete_media(media.id, owner_id=owner.id)
        services.store.delete_prefix(media_prefix(owner.id, media.id))
        wait_for(lambda: not _ffmpeg_children() and all(w.worker.state.value == "idle" for w in workers),
                 30, "the chunks to stop")  # fmt: skip
    finally:
        stop_all(workers)
    assert services.store.list(media_prefix(owner.id, media.id)) == []
    assert not _ffmpeg_children()
    # killed, not finished: cancelled when the job ended under it (the part's watcher, or the
    # runtime's "withdrawn" check, whichever sees it first), or its ffmpeg lost the race and found
    # its source deleted first
    causes = ("cancel", "withdrawn", "No such file")
    for j in running:
        atts = services.catalog.attempts(j.id)
        assert not any(a.won for a in atts)
        assert any(c in (a.error or "") for a in atts for c in causes), atts


def _ffmpeg_children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if "ffmpeg" in p.name()]


def test_sigkill_of_a_chunks_worker_redoes_only_that_chunk(
    make_env: Callable[..., Any], clip12: Path
) -> None:
    import os
    import signal

    from worker_helpers import spawn_worker, worker_logs

    _, services, config = make_env(media={**CHUNKED, "preset": "medium"}, fleet=POOLS)
    owner = services.catalog.create_user("ada")
    media, _ = _split(services, owner.id, clip12)
    victim = spawn_worker(config)
    try:
        job = wait_for(
            lambda: next(
                (j for j in _jobs(services, media.id, TRANSCODE_CHUNK) if j.state == JobState.RUNNING), None
            ),
            60,
            "a chunk running in the worker process",
        )
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        rescuer = WorkerThread(services).start()
        try:
            wait_for(
                lambda: services.catalog.get_media(media.id).state == MediaState.COMPLETE, 120, "complete"
            )
        finally:
            stop_all([rescuer])
    finally:
        if victim.poll() is None:
            victim.kill()
    for j in _jobs(services, media.id, TRANSCODE_CHUNK):
        atts = services.catalog.attempts(j.id)
        assert sum(a.won for a in atts) == 1
        if j.id == job.id:
            assert len(atts) == 2, worker_logs(config)  # the killed one, then the redo
    others = [j for j in _jobs(services, media.id, TRANSCODE_CHUNK) if j.id != job.id]
    assert all(len(services.catalog.attempts(j.id)) == 1 for j in others)
