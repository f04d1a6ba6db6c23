"""The production queue source tells the deadline policy which waiting jobs are one upload.

Real SQLite catalog and queue (embedded defaults in tmp_path). A chunked upload's parts share
their media id: the policy plans them as one upload (late once), and the arrival rate counts
uploads, not parts (else keep-warm would read one chunked upload as six arrivals).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fleet_env import write_config

from ebbtide.fleet.model import ARRIVAL_WINDOW
from ebbtide.fleet.sources import CatalogQueueSource
from ebbtide.services import open_services


def test_parts_of_one_upload_are_one_upload_in_the_observation(tmp_path: Path) -> None:
    _, settings = write_config(tmp_path)
    services = open_services(settings)
    try:
        cat = services.catalog
        user = cat.create_user("ana")
        media = cat.create_media(user.id, "match", "users/x/source", 4_000_000_000, duration=7200.0)
        parts = [cat.create_job("transcode-chunk", {}, owner_id=user.id, media_id=media.id,
                                work_seconds=1800.0) for _ in range(4)]  # fmt: skip
        solo = cat.create_job("command", {}, owner_id=user.id, work_seconds=60.0)
        view = CatalogQueueSource(services.queue, cat, services.clock).observe_queue()
        assert view.visible == 5 and view.waiting_uploads == 2
        assert [w.upload for w in view.waiting_jobs] == [media.id] * 4 + [solo.id]
        assert [w.work_seconds for w in view.waiting_jobs] == [1800.0] * 4 + [60.0]
        assert all(0.0 <= w.age < 60.0 for w in view.waiting_jobs)
        assert view.arrival_rate == pytest.approx(2 / ARRIVAL_WINDOW)
        assert {p.id for p in parts} <= {j.id for j in cat.list_jobs()}
    finally:
        services.close()
