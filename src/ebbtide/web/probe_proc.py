"""Probe an upload in a child process, not in the web server.

Why: libav parses whatever a stranger uploads. In a child, a hostile or just odd file cannot crash
or hang the server (it is killed at the timeout), and the memory libav grabs while probing junk
(measured: 50 to 130 MB for a 200 MB non-video) is returned when the child exits instead of staying
in the server's heap.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ebbtide.media.errors import MediaError

TIMEOUT = 60.0


def probe_isolated(path: Path, timeout: float = TIMEOUT) -> dict[str, Any]:
    """The probe's fields as a dict; raises MediaError with the probe's own message."""
    try:
        out = subprocess.run(
            [sys.executable, "-m", "ebbtide.web.probe_proc", str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise MediaError(
            f"probing the upload took longer than {timeout:.0f} s", hint="upload a standard video file"
        ) from None
    try:
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise MediaError(
            "the upload could not be probed (the prober crashed)", hint="upload a standard video file"
        ) from None
    if "error" in result:
        raise MediaError(str(result["error"]), hint=result.get("hint"))
    return result


def _main(argv: list[str]) -> int:
    from ebbtide.media.probe import probe

    try:
        info = probe(Path(argv[1]))
    except MediaError as e:
        print(json.dumps({"error": e.message, "hint": e.hint}))
        return 0
    print(json.dumps(asdict(info)))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
