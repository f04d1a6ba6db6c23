"""Probe a file in a child process under a memory cap and a time limit (web and worker alike).

Why: libav parses whatever a stranger uploads. In a child, a hostile or just odd file cannot crash
or hang the caller (it is killed at the timeout), cannot take more than `media.limits.probe_memory`
(an image bomb's decode fails instead of taking the host), and the memory libav grabs while probing
junk (measured: 50 to 130 MB for a 200 MB non-video) is returned when the child exits.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from ebbtide.config.sections import MediaLimits
from ebbtide.media.containers import UnsupportedContainer
from ebbtide.media.errors import KilledBySystem, MediaError, OverBudget
from ebbtide.media.limits import LimitExceeded
from ebbtide.media.probe import ProbeResult
from ebbtide.media.sandbox import child_env, make_cgroup, preexec_for

_HINT = "upload a standard video file"
# error types that cross the process boundary by name, so the caller's verdict and text see them
_KINDS: dict[str, type[MediaError]] = {
    c.__name__: c for c in (MediaError, LimitExceeded, UnsupportedContainer, OverBudget)
}


def probe_isolated(path: Path, limits: MediaLimits | None = None) -> ProbeResult:
    """The probe's result; raises the probe's own MediaError, or OverBudget past the caps."""
    limits = limits or MediaLimits()
    cgroup = make_cgroup(limits.probe_memory)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "ebbtide.media.isolated", str(path), limits.model_dump_json()],
            capture_output=True,
            text=True,
            timeout=limits.probe_timeout,
            env=child_env(),
            preexec_fn=preexec_for(limits.probe_memory, cgroup),
        )
    except subprocess.TimeoutExpired:
        raise OverBudget(
            f"probing the file took longer than {limits.probe_timeout:.0f} s", hint=_HINT
        ) from None
    finally:
        if cgroup is not None:
            cgroup.remove()
    try:
        result = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        result = None
    if not isinstance(result, dict):
        if out.returncode == -9 and cgroup is None:
            raise KilledBySystem("the probe was killed by the system (out of memory?)", hint="try again")
        raise OverBudget(
            f"the file could not be probed within {limits.probe_memory // 2**20} MB of memory", hint=_HINT
        )
    if "error" in result:
        kind = _KINDS.get(str(result.get("kind")), MediaError)
        raise kind(str(result["error"]), hint=result.get("hint"))
    return ProbeResult(**result)


def _main(argv: list[str]) -> int:
    """Child: cap is already set (preexec); probe and print one JSON line."""
    from ebbtide.media.probe import probe

    limits = MediaLimits.model_validate_json(argv[2])
    try:
        info = probe(Path(argv[1]), limits)
    except MediaError as e:
        kind = type(e).__name__ if type(e).__name__ in _KINDS else "MediaError"
        print(json.dumps({"error": e.message, "hint": e.hint, "kind": kind}))
        return 0
    except MemoryError:
        print(json.dumps({"error": "the file needs more memory to read than allowed", "kind": "OverBudget"}))
        return 0
    print(json.dumps(asdict(info)))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
