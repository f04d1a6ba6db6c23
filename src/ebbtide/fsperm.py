"""Files only their owner may read: the data folder, databases, secrets and stored media.

Created private (0700 folders, 0600 files) whatever the umask, so a shared host's other users
cannot read the catalog, the HMAC secret or anyone's videos. Existing files are tightened too,
so an install made before this rule is fixed on its next start.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Make `path` (and missing parents) 0700; an existing folder we own is tightened as well."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    with contextlib.suppress(OSError):  # not ours (e.g. a mounted volume): leave it
        if path.stat().st_uid == os.getuid():
            path.chmod(DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty at 0600 when missing, else tighten it to 0600 (databases before opening)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    try:
        with contextlib.suppress(OSError):
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path
