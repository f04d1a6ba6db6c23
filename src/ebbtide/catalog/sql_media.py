"""Media rows: create, read with owner scoping, rename, delete, and the atomic publish."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ebbtide.catalog import convert
from ebbtide.catalog.models import (
    JobRow,
    MediaRow,
    UserRow,
    new_id,
)
from ebbtide.catalog.records import (
    Media,
    Rendition,
)
from ebbtide.catalog.sql_core import (
    TERMINAL,
    SqlCore,
    check_id,
    clamp_fraction,
    exists_error,
    not_found,
    rowcount,
)
from ebbtide.catalog.states import (
    JobState,
    MediaState,
    check_job,
    check_media,
)
from ebbtide.errors import EbbtideError
from ebbtide.safetext import has_control_chars
from ebbtide.storage.base import validate_key, validate_prefix
from ebbtide.storage.sources import is_location, parse_location

log = logging.getLogger(__name__)


class MediaPart(SqlCore):
    def create_media(
        self,
        owner_id: str,
        title: str,
        source_key: str,
        size_bytes: int,
        duration: float | None = None,
        width: int | None = None,
        height: int | None = None,
        media_id: str | None = None,
    ) -> Media:
        title = self._title(title)
        if is_location(source_key):  # a source in place, in the user's own bucket
            parse_location(source_key)
        else:
            validate_key(source_key)
        if size_bytes < 0:
            raise EbbtideError(f"size_bytes must be ≥ 0, got {size_bytes}", hint="pass the file's size")
        mid = check_id(media_id, "media id") if media_id else new_id()
        now = self.clock.now()
        row = MediaRow(
            id=mid,
            owner_id=owner_id,
            title=title,
            state=MediaState.UPLOADED.value,
            source_key=source_key,
            size_bytes=size_bytes,
            created_at=now,
            updated_at=now,
            duration=duration,
            width=width,
            height=height,
            progress=0.0,
            renditions=[],
        )
        try:
            with self._tx() as s:
                if s.get(UserRow, owner_id) is None:
                    raise not_found("user", owner_id)
                if s.get(MediaRow, mid) is not None:
                    raise exists_error("media", mid)
                s.add(row)
        except IntegrityError:
            raise exists_error("media", mid) from None
        return convert.media(row)

    @staticmethod
    def _title(title: str) -> str:
        title = title.strip()
        if not title or len(title) > 300:
            raise EbbtideError("a title must have 1-300 characters", hint="give the video a short title")
        if has_control_chars(title):
            raise EbbtideError("a title must not contain control characters", hint="use plain text")
        return title

    def usage(self, owner_id: str) -> tuple[int, int]:
        """(bytes, videos) the owner's uploads take, for quotas."""
        with self._ro() as s:
            total, count = s.execute(
                select(func.coalesce(func.sum(MediaRow.size_bytes), 0), func.count(MediaRow.id)).where(
                    MediaRow.owner_id == owner_id
                )
            ).one()
        return int(total), int(count)

    def get_media(self, media_id: str, owner_id: str | None = None) -> Media:
        with self._ro() as s:
            return convert.media(self._media_row(s, media_id, owner_id))

    def list_media(self, owner_id: str | None = None, limit: int = 200) -> list[Media]:
        stmt = select(MediaRow).order_by(MediaRow.created_at.desc(), MediaRow.id).limit(max(0, limit))
        if owner_id is not None:
            stmt = stmt.where(MediaRow.owner_id == owner_id)
        with self._ro() as s:
            return [convert.media(r) for r in s.scalars(stmt)]

    def rename_media(self, media_id: str, owner_id: str, title: str) -> Media:
        title = self._title(title)
        with self._tx() as s:
            row = self._media_row(s, media_id, owner_id, lock=True)
            row.title = title
            row.updated_at = self.clock.now()
            return convert.media(row)

    def delete_media(self, media_id: str, owner_id: str | None = None) -> Media:
        now = self.clock.now()
        with self._tx() as s:
            self._media_row(s, media_id, owner_id)  # scope check before touching anything
            jobs = s.scalars(
                select(JobRow)
                .where(JobRow.media_id == media_id, JobRow.state.not_in(TERMINAL))
                .with_for_update()
            ).all()
            for j in jobs:
                check_job(JobState(j.state), JobState.FAILED)
                j.state, j.error, j.finished_at, j.updated_at = JobState.FAILED.value, "deleted", now, now
            row = self._media_row(s, media_id, owner_id, lock=True)
            record = convert.media(row)
            s.delete(row)
        log.info("media deleted", extra={"media_id": media_id, "jobs_failed": len(jobs)})
        return record

    def set_media_state(self, media_id: str, state: MediaState, error: str | None = None) -> Media:
        with self._tx() as s:
            row = self._media_row(s, media_id, None, lock=True)
            check_media(MediaState(row.state), state)
            row.state, row.error, row.updated_at = state.value, error, self.clock.now()
            return convert.media(row)

    def set_media_progress(self, media_id: str, progress: float) -> None:
        p = clamp_fraction(progress, "progress")
        with self._tx() as s:
            n = rowcount(
                s,
                update(MediaRow)
                .where(MediaRow.id == media_id)
                .values(progress=p, updated_at=self.clock.now())
                .execution_options(synchronize_session=False),
            )
        if not n:
            raise not_found("media", media_id)

    def publish_media(
        self,
        media_id: str,
        job_id: str,
        attempt_id: str,
        prefix: str,
        master_key: str,
        renditions: Sequence[Rendition],
        thumbnail_key: str | None,
        storyboard_key: str | None,
        duration: float | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> bool:
        validate_prefix(prefix)
        for key in (master_key, thumbnail_key, storyboard_key):
            if key is not None:
                validate_key(key)
        with self._tx() as s:
            self._job_row(s, job_id, lock=True)  # lock order: job, then attempt, then media
            att = self._attempt_row(s, job_id, attempt_id)
            if not self._claim_win(s, att, result={"prefix": prefix}):
                log.info("publish lost the ledger", extra={"job_id": job_id, "attempt_id": attempt_id})
                return False
            row = self._locked_media(s, media_id)
            if row is None:  # raising rolls the win back too: nothing is half-published
                raise not_found("media", media_id)
            old = MediaState(row.state)
            path = {
                MediaState.QUEUED: [MediaState.TRANSCODING, MediaState.TRANSCODED, MediaState.COMPLETE],
                MediaState.TRANSCODING: [MediaState.TRANSCODED, MediaState.COMPLETE],
                MediaState.TRANSCODED: [MediaState.COMPLETE],
            }.get(old, [MediaState.COMPLETE])
            for new in path:
                check_media(old, new)
                old = new
            row.state = MediaState.COMPLETE.value
            row.published_prefix, row.master_key = prefix, master_key
            row.renditions = [convert.rendition_to_json(r) for r in renditions]
            row.thumbnail_key, row.storyboard_key = thumbnail_key, storyboard_key
            row.duration = duration if duration is not None else row.duration
            row.width = width if width is not None else row.width
            row.height = height if height is not None else row.height
            row.job_id, row.progress, row.error, row.updated_at = job_id, 1.0, None, self.clock.now()
            row.playable_seconds = row.duration
        log.info("media published", extra={"media_id": media_id, "job_id": job_id, "prefix": prefix})
        return True

    def set_playable(
        self, media_id: str, prefix: str, master_key: str, seconds: float, renditions: Sequence[Rendition]
    ) -> bool:
        """Point a media still transcoding at its growing (EVENT) playlists; `seconds` only grows.

        False (nothing changed) when the media is gone, failed, already complete, or already
        playable further: a slower writer never shrinks what viewers see.
        """
        validate_prefix(prefix)
        validate_key(master_key)
        with self._tx() as s:
            row = self._locked_media(s, media_id)
            if row is None or MediaState(row.state) in (MediaState.FAILED, MediaState.COMPLETE):
                return False
            if seconds <= (row.playable_seconds or 0.0):
                return False
            row.published_prefix, row.master_key = prefix, master_key
            row.renditions = [convert.rendition_to_json(r) for r in renditions]
            row.playable_seconds, row.updated_at = seconds, self.clock.now()
        log.info("media playable", extra={"media_id": media_id, "seconds": round(seconds, 1)})
        return True
