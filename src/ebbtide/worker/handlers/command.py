"""`command` jobs: a shell command with the payload as JSON on stdin and in the environment.

Env: EBBTIDE_JOB (the payload), EBBTIDE_JOB_ID, EBBTIDE_JOB_DIR (holds input/ and output/).
A line `EBBTIDE_PROGRESS=0.42` on stdout reports progress. A non-zero exit fails the attempt with
the tail of stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
from collections import deque
from typing import IO

from ebbtide.errors import EbbtideError
from ebbtide.procs import die_with_parent
from ebbtide.worker.context import Cancelled, JobContext
from ebbtide.worker.decisions import tail
from ebbtide.worker.handlers import Outcome
from ebbtide.worker.handlers.jobfiles import prepare, publish_outputs

_PROGRESS = re.compile(r"^EBBTIDE_PROGRESS=([0-9]*\.?[0-9]+)\s*$")
_KILL_AFTER = 3.0  # seconds between SIGTERM and SIGKILL on cancel


class CommandFailed(EbbtideError):
    """The job's command exited non-zero."""


def run(ctx: JobContext) -> Outcome:
    command = ctx.payload.get("command")
    if not isinstance(command, str) or not command.strip():
        raise CommandFailed(
            "a command job needs a non-empty string `command` in its payload",
            hint='submit {"command": "your-program --flag"}',
        )
    _, out = prepare(ctx)
    payload_json = json.dumps(ctx.payload)
    env = dict(os.environ)
    env.update(EBBTIDE_JOB=payload_json, EBBTIDE_JOB_ID=ctx.job.id, EBBTIDE_JOB_DIR=str(ctx.job_dir))
    proc = subprocess.Popen(
        ["/bin/sh", "-c", command],
        cwd=ctx.job_dir,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so a cancel kills the whole process group
        preexec_fn=die_with_parent,
    )
    err_tail: deque[str] = deque(maxlen=60)
    readers = [
        threading.Thread(target=_read_stdout, args=(proc.stdout, ctx), daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, err_tail), daemon=True),
    ]
    for t in readers:
        t.start()
    try:
        assert proc.stdin is not None
        proc.stdin.write(payload_json)
        proc.stdin.close()
    except OSError:
        pass  # the command need not read stdin
    code = _wait(proc, ctx.cancel)
    for t in readers:
        t.join(timeout=2)
    if code is None:
        raise Cancelled("the command was stopped")
    if code != 0:
        detail = tail("".join(err_tail), 800) or "(no stderr)"
        raise CommandFailed(f"command exited with status {code}: {detail}")
    outputs = publish_outputs(ctx, out)
    return Outcome(result={"exit_code": 0, "outputs": list(outputs)}, outputs=outputs)


def _wait(proc: subprocess.Popen[str], cancel: threading.Event) -> int | None:
    """Exit code, or None when cancelled (the process group is then terminated, then killed)."""
    while True:
        try:
            return proc.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            if cancel.is_set():
                break
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=_KILL_AFTER)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        proc.wait()
    return None


def _signal_group(proc: subprocess.Popen[str], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _read_stdout(stream: IO[str] | None, ctx: JobContext) -> None:
    if stream is None:
        return
    for line in stream:
        m = _PROGRESS.match(line.strip())
        if m:
            ctx.progress(float(m.group(1)))


def _drain(stream: IO[str] | None, into: deque[str]) -> None:
    if stream is None:
        return
    for line in stream:
        into.append(line)
