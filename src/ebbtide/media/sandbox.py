"""A memory cap for every probe and ffmpeg child: cgroup v2 `memory.max` where writable, else RLIMIT_AS.

Why both: a cgroup caps what the process really uses (RSS and page cache it dirties) and the kernel
kills only that child when it is exceeded; it needs a delegated, writable cgroup v2 tree, which a
container or a plain user often lacks. RLIMIT_AS works everywhere but caps *address space*, so it
is set with headroom over the RSS budget (threads reserve stacks and malloc arenas they never touch).
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ebbtide.procs import die_with_parent

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
AS_HEADROOM = 1.5  # address space allowed per byte of RSS budget under RLIMIT_AS
# Fewer malloc arenas: ffmpeg's many threads otherwise reserve 64 MB of address space each.
CHILD_ENV = {"MALLOC_ARENA_MAX": "4"}


def address_space_limit(budget: int) -> int:
    return int(budget * AS_HEADROOM)


def set_address_space(budget: int) -> None:
    """Cap this process's address space (called in the child, before exec or at its start)."""
    cap = address_space_limit(budget)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


@dataclass
class Cgroup:
    """One child cgroup under ours with `memory.max` set; removed when the child is gone."""

    path: Path

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def peak(self) -> int | None:
        try:
            return int((self.path / "memory.peak").read_text())
        except (OSError, ValueError):
            return None

    def oom_killed(self) -> bool:
        try:
            for line in (self.path / "memory.events").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
        except (OSError, ValueError):
            pass
        return False

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.rmdir()


def own_cgroup_dir() -> Path | None:
    """Our cgroup v2 directory if it is writable and offers the memory controller."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    rel = next((ln[3:] for ln in lines if ln.startswith("0::")), None)
    if rel is None or not (CGROUP_ROOT / "cgroup.controllers").is_file():
        return None
    here = CGROUP_ROOT / rel.lstrip("/")
    try:
        if "memory" not in (here / "cgroup.subtree_control").read_text().split():
            return None
    except OSError:
        return None
    return here if os.access(here, os.W_OK) else None


def make_cgroup(budget: int) -> Cgroup | None:
    """A fresh capped cgroup, or None when cgroup v2 is not writable here (then RLIMIT_AS is used)."""
    base = own_cgroup_dir()
    if base is None:
        return None
    path = base / f"ebbtide-{uuid.uuid4().hex[:12]}"
    try:
        path.mkdir()
        (path / "memory.max").write_text(str(budget))
        with contextlib.suppress(OSError):
            (path / "memory.swap.max").write_text("0")
    except OSError as e:
        log.debug("cgroup v2 not usable; falling back to RLIMIT_AS", extra={"error": str(e)})
        with contextlib.suppress(OSError):
            path.rmdir()
        return None
    return Cgroup(path)


def preexec_for(budget: int | None, cgroup: Cgroup | None) -> Callable[[], None]:
    """`preexec_fn`: die with the parent; join the cgroup, or cap the address space."""

    def run() -> None:
        die_with_parent()
        if budget is None:
            return
        if cgroup is not None:
            (cgroup.path / "cgroup.procs").write_text("0")  # "0" = this process
        else:
            set_address_space(budget)

    return run


def child_env() -> dict[str, str]:
    return {**os.environ, **CHILD_ENV}
