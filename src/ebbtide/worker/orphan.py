"""Local workers whose launcher died: `ebbtide up` sets EBBTIDE_LAUNCHER_PID on the workers it
starts; when that process is gone (the worker was re-parented), the worker applies
`worker.orphan_idle_exit` even if no idle exit was configured, so a `kill -9` of `up` does not
leave workers running under PID 1 forever. Busy workers finish their job first."""

from __future__ import annotations

import os
from collections.abc import Mapping

ENV_LAUNCHER_PID = "EBBTIDE_LAUNCHER_PID"


def launcher_gone(env: Mapping[str, str] | None = None, ppid: int | None = None) -> bool:
    raw = (os.environ if env is None else env).get(ENV_LAUNCHER_PID, "")
    if not raw.isdigit():
        return False  # not started by a local launcher: its supervisor decides
    return int(raw) != (os.getppid() if ppid is None else ppid)
