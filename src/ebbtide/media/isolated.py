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


def is_url(source: Path | str) -> bool:
    return str(source).startswith(("http://", "https://"))


def probe_isolated(path: Path | str, limits: MediaLimits | None = None) -> ProbeResult:
    """The probe's result; raises the probe's own MediaError, or OverBudget past the caps.

    `path` may be an http(s) URL (a presigned GET): the child then reads it by ranges, only what
    the demuxer asks for, with the same allowlist and limits. The URL goes on stdin, not argv
    (a presigned URL is a credential; argv is visible to every local user)."""
    limits = limits or MediaLimits()
    url = is_url(path)
    cgroup = make_cgroup(limits.probe_memory)
    try:
        argv = [sys.executable, "-m", "ebbtide.media.isolated", "-" if url else str(path)]
        out = subprocess.run(
            [*argv, limits.model_dump_json()],
            input=str(path) if url else "",
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
        if argv[1] == "-":
            info = _probe_url(sys.stdin.read().strip(), limits)
        else:
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


def _probe_url(url: str, limits: MediaLimits) -> ProbeResult:
    """Child: probe a URL through ranged reads (storage.sources.UrlRangeReader)."""
    import io

    from ebbtide.errors import EbbtideError
    from ebbtide.media.probe import probe_stream
    from ebbtide.storage.sources import UrlRangeReader

    try:
        reader = UrlRangeReader(url)
    except (EbbtideError, OSError) as e:
        raise MediaError(f"the source could not be read ({getattr(e, 'message', type(e).__name__)})",
                         hint="check the store") from None  # fmt: skip
    name = url.split("?", 1)[0].rsplit("/", 1)[-1] or "source"
    with io.BufferedReader(reader, buffer_size=64 * 1024) as stream:
        info = probe_stream(stream, name, reader.size, limits)
    print(json.dumps({"bytes_read": reader.bytes_read}), file=sys.stderr)
    return info


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
