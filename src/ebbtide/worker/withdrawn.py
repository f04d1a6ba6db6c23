"""Work that nobody wants any more: its job was finished elsewhere or its video deleted.

Checked on every heartbeat, so deleting a video stops its running transcode within one heartbeat
(lease/3) instead of letting it encode to the end and be retried.
"""

from __future__ import annotations

from ebbtide.catalog.base import Catalog
from ebbtide.catalog.states import TERMINAL_JOB_STATES
from ebbtide.errors import NotFound


def is_withdrawn(catalog: Catalog, job_id: str, media_id: str | None) -> bool:
    """True when the job is terminal (deleting a video fails its jobs) or gone, or its media was
    deleted. A running attempt's job is `running`, so this never fires on live work."""
    try:
        job = catalog.get_job(job_id)
    except NotFound:
        return True
    if job.state in TERMINAL_JOB_STATES:
        return True
    if media_id is None:
        return False
    try:
        catalog.get_media(media_id)
    except NotFound:
        return True
    return False
