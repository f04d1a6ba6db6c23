"""Deleting a video cancels its running transcode within one heartbeat (issue 10)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from worker_helpers import WorkerThread, stop_all, wait_for

from ebbtide.catalog.states import JobState
from ebbtide.media.samples import generate_clip
from ebbtide.worker.intake import submit_file
from ebbtide.worker.runtime import Result


def _ffmpeg_children() -> list[int]:
    """ffmpeg processes whose parent is this test process (the worker runs on a thread here)."""
    import os
    from pathlib import Path

    me, out = os.getpid(), []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                stat = Path(f"/proc/{p}/stat").read_text()
            except OSError:
                continue
            if "(ffmpeg" in stat and int(stat.rsplit(")", 1)[1].split()[1]) == me:
                out.append(int(p))
    return out


def test_deleting_a_video_stops_its_running_transcode(make_env: Callable[..., Any], tmp_path: Any) -> None:
    lease = 3.0
    _, services, _ = make_env(queue={"lease": lease}, media={"preset": "medium"})
    clip = generate_clip(tmp_path / "long.mp4", seconds=40, width=1280, height=720)
    owner = services.catalog.create_user("dora")
    media = submit_file(services, clip, owner.id, "long one")
    w = WorkerThread(services, worker_id="w-del").start()
    try:
        wait_for(lambda: _ffmpeg_children(), 60, "the transcode's ffmpeg")
        t0 = time.monotonic()
        services.catalog.delete_media(media.id, owner_id=owner.id)  # what the web's DELETE does
        wait_for(lambda: not _ffmpeg_children(), lease / 3 + 5, "ffmpeg to be stopped")
        stopped_after = time.monotonic() - t0
        wait_for(lambda: w.worker.last_result is not None, 10, "the attempt to end")
    finally:
        stop_all([w])
    assert stopped_after < lease / 3 + 5
    assert w.worker.last_result is Result.SKIPPED
    job = services.catalog.get_job(media.job_id or "")
    assert job.state == JobState.FAILED and job.error == "deleted"
    assert services.queue.stats().backlog == 0  # acked, not left to be retried
