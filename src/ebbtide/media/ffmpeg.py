"""Locating ffmpeg and running it with progress, cancellation and a bounded log tail."""

from __future__ import annotations

import functools
import logging
import os
import re
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from ebbtide.media.errors import (
    FfmpegFailed,
    KilledBySystem,
    MediaError,
    OverBudget,
    TooSlow,
    TranscodeCancelled,
)
from ebbtide.media.pace import Overrun, Pace, TimeBudget, judge
from ebbtide.media.sandbox import child_env, make_cgroup, preexec_for

log = logging.getLogger(__name__)

ENV_VAR = "EBBTIDE_FFMPEG"


def ffmpeg_path() -> str:
    """The ffmpeg binary: `EBBTIDE_FFMPEG` if set, else the one shipped in the imageio-ffmpeg wheel.

    The wheel's build has libx264, NVENC and libvmaf, so no system ffmpeg is needed.
    """
    override = os.environ.get(ENV_VAR)
    if override:
        if not Path(override).is_file() or not os.access(override, os.X_OK):
            raise MediaError(
                f"{ENV_VAR}={override} is not an executable file",
                hint=f"unset {ENV_VAR} to use the ffmpeg from the imageio-ffmpeg wheel",
            )
        return override
    try:
        import imageio_ffmpeg
    except ImportError as e:  # pragma: no cover - it is a hard dependency
        raise MediaError("imageio-ffmpeg is not installed", hint="pip install imageio-ffmpeg") from e
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def run_ffmpeg(
    args: Sequence[str],
    *,
    on_line: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
    what: str = "ffmpeg",
    memory: int | None = None,
    budget: TimeBudget | None = None,
) -> None:
    """Run ffmpeg with `args`; stdout lines (e.g. `-progress pipe:1`) go to `on_line`.

    The cancel event is polled every 50 ms, so a cancelled run dies well within a second.
    Stderr is drained on its own thread (a full pipe would block ffmpeg) and its tail
    becomes the error message when ffmpeg fails. `memory` caps the child (sandbox.py); past
    `timeout` it is killed and OverBudget raised: both are this file's doing, not the host's.
    With `budget` (its `seconds` replace `timeout`; needs `-progress pipe:1`), an overrun is judged
    on ffmpeg's out_time (pace.py): stuck or hopeless is OverBudget, still progressing is TooSlow.
    """
    if budget is not None:
        timeout = budget.seconds
    cmd = [ffmpeg_path(), "-hide_banner", "-nostdin", *args]
    log.debug("ffmpeg start", extra={"cmd": " ".join(cmd), "what": what})
    cgroup = make_cgroup(memory) if memory else None
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        env=child_env(),
        # dies with a SIGKILLed worker; joins its capped cgroup or caps its address space
        preexec_fn=preexec_for(memory, cgroup),
    )
    tail: deque[str] = deque(maxlen=25)
    # the largest out_time ffmpeg reported and when it last grew (monotonic s)
    written: list[float | None] = [None, time.monotonic()]

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            tail.append(line.rstrip())

    def read_stdout() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            t = _out_time(line)
            if t is not None and (written[0] is None or t > written[0]):
                written[0], written[1] = t, time.monotonic()
            if on_line is not None:
                try:
                    on_line(line.rstrip("\n"))
                except Exception:  # a broken callback must not wedge ffmpeg's pipe
                    log.exception("progress callback failed", extra={"what": what})

    readers = [threading.Thread(target=f, daemon=True) for f in (read_stderr, read_stdout)]
    for t in readers:
        t.start()
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    try:
        while True:
            try:
                proc.wait(timeout=0.05)
                break
            except subprocess.TimeoutExpired:
                pass
            if cancel is not None and cancel.is_set():
                _kill(proc)
                raise TranscodeCancelled(f"{what} was cancelled", hint="the job may be retried")
            if deadline is not None and time.monotonic() > deadline:
                _kill(proc)
                now = time.monotonic()
                out_time, advanced = written
                assert advanced is not None
                raise _overrun(what, timeout, budget, Overrun(now - started, out_time, now - advanced))
    finally:
        if proc.poll() is None:
            _kill(proc)
        for t in readers:
            t.join(timeout=2)
        oom = cgroup.oom_killed() if cgroup is not None else False
        if cgroup is not None:
            cgroup.remove()
    if proc.returncode != 0:
        raise _failure(proc.returncode, tail, what, memory, oom)


def _out_time(line: str) -> float | None:
    """Media seconds written, from a `-progress` line `out_time_us=` (or `out_time_ms=`, also µs)."""
    key, sep, value = line.strip().partition("=")
    if not sep or key not in ("out_time_us", "out_time_ms") or not value.lstrip("-").isdigit():
        return None
    return max(0, int(value)) / 1_000_000


def _overrun(what: str, timeout: float | None, budget: TimeBudget | None, o: Overrun) -> MediaError | TooSlow:
    """The error for a run stopped at its time budget: without a `budget` always OverBudget."""
    spent = f"{what} took longer than its time budget of {timeout or 0:.0f} s and was stopped"
    if budget is None:
        hint = "raise media.limits.time_factor or time_floor if such files are expected"
        return OverBudget(spent, hint=hint)
    pace = judge(o, budget)
    done = f"{o.out_time or 0:.0f} of {budget.duration:.0f} s written"
    if pace is Pace.SLOW:
        return TooSlow(f"{spent} while still progressing ({done})",
                       hint="the host was slow; it will be retried with a larger budget")  # fmt: skip
    if pace is Pace.STALLED:
        return OverBudget(
            f"{spent}: its output stopped advancing ({done}), so the input is stuck",
            hint="the file will fail again; check it plays to the end",
        )
    return OverBudget(
        f"{spent}: at its rate ({done}) even the largest budget of {budget.largest:.0f} s is too short",
        hint="raise media.limits.max_time_factor or time_floor if such files are expected",
    )


def _failure(
    code: int, tail: deque[str], what: str, memory: int | None, oom: bool
) -> MediaError | KilledBySystem:
    """What a non-zero exit means: over our own cap (permanent), killed by the host (transient),
    or ffmpeg refusing the input (permanent)."""
    detail = _summarise(tail)
    mb = (memory or 0) // 2**20
    # under RLIMIT_AS the refusal is often logged well before the last lines (the rest of the graph
    # then fails with EINVAL), so the whole kept tail is searched, not only the summary
    enomem = any("Cannot allocate memory" in ln for ln in tail)
    if oom or (memory and code != -signal.SIGKILL and enomem):
        return OverBudget(
            f"{what} needed more than its memory cap of {mb} MB",
            hint="raise media.limits.max_memory if such files are expected",
        )
    if code == -signal.SIGKILL:
        return KilledBySystem(f"{what} was killed by the system (exit {code})", hint="it will be retried")
    return FfmpegFailed(
        f"{what} failed (exit {code}): {detail}",
        hint="the input may be damaged or in an unsupported format",
    )


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    try:
        proc.wait(timeout=2)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not fail in practice
        log.error("ffmpeg did not die after SIGKILL", extra={"pid": proc.pid})


_PATH = re.compile(r"(?:file:)?/[^\s'\":,]+")


def _summarise(tail: deque[str]) -> str:
    """The last lines of ffmpeg's log, with paths blanked (error texts reach users)."""
    lines = [_PATH.sub("<file>", ln) for ln in tail if ln.strip()]
    return " | ".join(lines[-4:]) if lines else "no output"


@functools.lru_cache(maxsize=4)
def nvenc_works(binary: str | None = None) -> bool:
    """True only if h264_nvenc really encodes a few frames here (listing encoders proves nothing).

    Cached per binary: the probe costs ~0.1 s on a machine without a GPU, more with one.
    """
    cmd = [
        binary or ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "error",
        "-f", "lavfi", "-i", "testsrc2=size=256x144:rate=30:duration=0.2",
        "-c:v", "h264_nvenc", "-frames:v", "5", "-f", "null", "-",
    ]  # fmt: skip
    try:
        res = subprocess.run(cmd, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    ok = res.returncode == 0
    log.info("nvenc probe", extra={"nvenc": ok})
    return ok
