"""Progress has its own cadence (issue 15): a 10 s job moves in `status`, not only every lease/3.

A real in-process worker runs a real `command` job that sleeps 10 s reporting progress; the lease
is the default 2 minutes, so lease extensions (every 40 s) would never carry progress in time.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from worker_helpers import WorkerThread, wait_for

from ebbtide.catalog.states import JobState
from ebbtide.cli.fleet_cmd import render
from ebbtide.fleet.snapshot import take_snapshot
from ebbtide.worker.intake import submit_job

SCRIPT = (
    "import time\n"
    "for i in range(1, 21):\n"
    "    time.sleep(0.5)\n"
    "    print(f'EBBTIDE_PROGRESS={i / 20}', flush=True)\n"
)


def test_a_ten_second_job_shows_progress_at_least_three_times_in_status(
    make_env: Callable[..., Any], tmp_path: Path
) -> None:
    script = tmp_path / "slow.py"
    script.write_text(SCRIPT)
    _, services, _ = make_env(queue={"lease": 120})
    job = submit_job(services, "command", {"command": f"{sys.executable} {script}"})
    worker = WorkerThread(services).start()
    try:
        seen: list[str] = []
        end = time.monotonic() + 30
        while time.monotonic() < end:
            snap = take_snapshot(services)
            mine = [w for w in snap.workers if w.job_id == job.id]
            if mine:
                text = f"{mine[0].progress:.0%}"
                assert text in _plain(render(snap))  # what `ebbtide status` prints
                if not seen or seen[-1] != text:
                    seen.append(text)
            if services.catalog.get_job(job.id).state == JobState.SUCCEEDED:
                break
            time.sleep(0.5)
        wait_for(lambda: services.catalog.get_job(job.id).state == JobState.SUCCEEDED, 20, "the job done")
        moving = [s for s in seen if s != "0%"]
        assert len(moving) >= 3, seen
        assert services.catalog.get_job(job.id).progress == 1.0  # the bar ends full
    finally:
        worker.stop()


def _plain(group: Any) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(group)
    return console.export_text()
