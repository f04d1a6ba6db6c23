"""Chaos: 33 jobs across 3 worker processes while a random worker is SIGKILLed every ~2 s and a
fresh one started. Every job must end succeeded exactly once, each media with one HLS set, no
temp files, nothing in flight."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from worker_helpers import spawn_worker, wait_for, worker_logs

from ebbtide.catalog.states import JobState, MediaState
from ebbtide.media.samples import generate_clip
from ebbtide.worker.intake import hls_root, submit_file, submit_job
from ebbtide.worker.runtime import temp_root_for

COMMAND_JOBS = 30
TRANSCODES = 3
WORKERS = 3


def test_sigkill_chaos_loses_and_doubles_nothing(make_env: Callable[..., Any], tmp_path: Path) -> None:
    settings, services, config = make_env(
        worker={"grace": 1},
        queue={"lease": 2, "max_receives": 20, "backoff_base": 0.1, "backoff_max": 0.5},
    )
    owner = services.catalog.create_user("chaos")
    clip = generate_clip(tmp_path / "clip.mp4", seconds=1, width=320, height=240)
    media_ids = [submit_file(services, clip, owner.id).id for _ in range(TRANSCODES)]
    job_ids = [submit_job(services, "command", {"command": "sleep 0.5"}).id for _ in range(COMMAND_JOBS)]
    job_ids += [services.catalog.get_media(m).job_id or "" for m in media_ids]

    rng = random.Random(4)
    workers: list[subprocess.Popen[bytes]] = [spawn_worker(config) for _ in range(WORKERS)]
    kills = 0

    def all_done() -> bool:
        return all(services.catalog.get_job(j).state == JobState.SUCCEEDED for j in job_ids)

    deadline = time.monotonic() + 120
    try:
        while not all_done():
            assert time.monotonic() < deadline, "chaos run did not finish in 120 s\n" + worker_logs(config)
            time.sleep(rng.uniform(1.5, 2.5))
            victim = workers.pop(rng.randrange(len(workers)))
            victim.send_signal(signal.SIGKILL)
            victim.wait()  # reaped, so its pid is dead for the temp-dir sweep
            kills += 1
            workers.append(spawn_worker(config))
        wait_for(lambda: services.queue.stats().backlog == 0, 30, "the queue to drain")
    finally:
        # a worker still importing has no SIGTERM handler yet: let the fresh ones finish booting
        started = lambda: {w.pid for w in workers} <= {r.pid for r in services.catalog.list_workers()}  # noqa: E731
        wait_for(started, 15, "the last workers to start")
        for w in workers:
            w.send_signal(signal.SIGTERM)
        codes = [w.wait(30) for w in workers]
    assert codes == [0] * len(workers), worker_logs(config)

    # every job succeeded exactly once in the ledger
    attempts = {j: services.catalog.attempts(j) for j in job_ids}
    for j, atts in attempts.items():
        assert services.catalog.get_job(j).state == JobState.SUCCEEDED
        assert sum(a.won for a in atts) == 1, (j, atts)
    # each media has exactly one HLS set, the published one
    for m in media_ids:
        media = services.catalog.get_media(m)
        assert media.state == MediaState.COMPLETE and media.published_prefix
        root = hls_root(owner.id, m)
        sets = {root + i.key[len(root):].split("/", 1)[0] + "/" for i in services.store.list(root)}
        assert sets == {media.published_prefix}, sets
        assert services.store.exists(media.master_key or "")
    # nothing in flight, nothing dead, no temp files
    stats = services.queue.stats()
    assert (stats.visible, stats.in_flight, stats.delayed, stats.dead) == (0, 0, 0, 0)
    leftovers = [p for p in temp_root_for(settings.worker.temp_dir).rglob("*")]
    assert leftovers == [], leftovers

    all_attempts = [a for atts in attempts.values() for a in atts]
    interrupted = sum(1 for a in all_attempts if a.outcome in (None, "lost"))
    duplicates = sum(1 for a in all_attempts if a.outcome == "duplicate")
    print(
        f"\nchaos: jobs={len(job_ids)} succeeded={len(job_ids)} kills={kills} "
        f"attempts={len(all_attempts)} interrupted={interrupted} duplicates={duplicates} "
        f"failed_attempts={sum(1 for a in all_attempts if a.outcome == 'failed')}"
    )
    assert kills >= 3
