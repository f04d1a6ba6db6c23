"""Work that nobody wants any more: its video was deleted, or its job failed or went dead.

Checked on every heartbeat, so deleting a video stops its running transcode within one heartbeat
(lease/3) instead of letting it encode to the end and be retried.
"""

from __future__ import annotations

from ebbtide.catalog.base import Catalog
from ebbtide.catalog.states import JobState
from ebbtide.errors import NotFound


def is_withdrawn(catalog: Catalog, job_id: str, media_id: str | None) -> bool:
    """True when the job failed or went dead (deleting a video fails its jobs) or is gone, or its
    media was deleted. A job another attempt made succeed is left alone: the ledger settles that
    duplicate when it finishes."""
    try:
        job = catalog.get_job(job_id)
    except NotFound:
        return True
    if job.state in (JobState.FAILED, JobState.DEAD):
        return True
    if media_id is None:
        return False
    try:
        catalog.get_media(media_id)
    except NotFound:
        return True
    return False
