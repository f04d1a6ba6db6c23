"""A full disk during an upload answers 507 with a JSON error, keeps nothing half-written, and the
app keeps serving; a backend that is down answers 503 naming the part."""

from __future__ import annotations

import resource
import signal
from pathlib import Path

from web_helpers import Env

from ebbtide.media.samples import generate_clip


def test_upload_on_a_full_disk_is_507_json(env: Env, tmp_path: Path) -> None:
    clip = generate_clip(tmp_path / "big.mp4", seconds=4, width=640, height=360)
    data = env.services.settings.data_path
    biggest = max(p.stat().st_size for p in data.rglob("*") if p.is_file())
    limit = max(2 * biggest, 300_000)
    assert clip.stat().st_size > limit
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit: EFBIG, a real OSError
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        r = env.upload(env.alice, clip, "too big for the disk")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert r.status_code == 507, r.text
    body = r.json()
    assert body["error"].startswith("no space left") and body["hint"]
    assert env.services.catalog.list_media() == []
    assert env.services.queue.stats().backlog == 0
    half = [p for p in data.rglob("*") if p.is_file() and p.stat().st_size >= limit]
    assert half == [], half  # the partial upload was removed
    assert env.client.get("/health").status_code == 200  # still serving
