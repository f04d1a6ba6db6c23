"""ffmpeg must not outlive a worker killed with SIGKILL (it would burn the CPU of the next job).

A chatty ffmpeg dies of SIGPIPE on its next write to the dead parent's pipe; a quiet one (no
stats, no progress) would encode on, so this test runs it quiet: only PDEATHSIG can stop it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import psutil

SCRIPT = textwrap.dedent(
    """
    from ebbtide.media.ffmpeg import run_ffmpeg
    run_ffmpeg(["-nostats", "-loglevel", "quiet", "-re", "-f", "lavfi",
                "-i", "testsrc2=size=320x240:rate=30:duration=600", "-f", "null", "-"])
    """
)


def test_ffmpeg_dies_with_a_sigkilled_parent() -> None:
    parent = subprocess.Popen([sys.executable, "-c", SCRIPT])
    try:
        deadline = time.monotonic() + 30
        children: list[psutil.Process] = []
        while time.monotonic() < deadline and not children:
            children = [c for c in psutil.Process(parent.pid).children() if "ffmpeg" in c.name()]
            time.sleep(0.05)
        assert children, "ffmpeg never started"
        time.sleep(1.0)  # past start-up: from here on a quiet ffmpeg writes nothing to its pipes
        parent.send_signal(signal.SIGKILL)
        parent.wait(5)
        _gone, alive = psutil.wait_procs(children, timeout=5)
        for orphan in alive:
            orphan.kill()
        assert not alive, f"ffmpeg outlived its parent: {[p.pid for p in alive]}"
    finally:
        if parent.poll() is None:
            parent.kill()
