"""Child processes that die with their parent.

A worker killed with SIGKILL gets no chance to stop its ffmpeg or its job's command; on Linux the
child asks the kernel for SIGKILL when its parent goes (PR_SET_PDEATHSIG). The signal follows the
*thread* that started the child, so start children from the thread that waits for them.
"""

from __future__ import annotations

import ctypes
import signal
from typing import Any

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()  # looked up before any fork: dlopen in a forked child can deadlock


def die_with_parent() -> None:
    """`preexec_fn` for subprocess.Popen; a no-op where prctl does not exist."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)
