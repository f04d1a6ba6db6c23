"""Resident memory of a process tree, read from /proc: what the limits bench and the hostile-input
tests measure, so both count the same way (ffmpeg and probe children included)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def tree_rss(root: int, include_root: bool = True) -> int:
    """Bytes resident in `root`'s descendants (and `root` itself unless `include_root` is False)."""
    children: dict[int, list[int]] = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                stat = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(stat[1]), []).append(int(p))
    total, stack = 0, [root] if include_root else list(children.get(root, []))
    while stack:
        pid = stack.pop()
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
        stack += children.get(pid, [])
    return total


@contextmanager
def peak_tree_rss(interval: float = 0.05, include_root: bool = True) -> Iterator[list[int]]:
    """Peak `tree_rss` of this process while the block runs, sampled every `interval` s (in [0])."""
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss(os.getpid(), include_root))
            time.sleep(interval)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        yield peak
    finally:
        stop.set()
        t.join()
