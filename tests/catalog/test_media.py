"""Media lifecycle, illegal transitions, owner scoping, deletion."""

from __future__ import annotations

import pytest

from ebbtide.catalog import SqlCatalog
from ebbtide.catalog.records import Rendition, User
from ebbtide.catalog.states import JobState, MediaState
from ebbtide.clock import VirtualClock
from ebbtide.errors import EbbtideError, IllegalTransition, InvalidKey, NotFound

LADDER = (
    Rendition("720p", 1280, 720, 3_000_000, 2_500_000, "720p/index.m3u8"),
    Rendition("360p", 640, 360, 800_000, 700_000, "360p/index.m3u8"),
)


def test_media_lifecycle_uploaded_to_complete(cat: SqlCatalog, alice: User, clock: VirtualClock) -> None:
    m = cat.create_media(alice.id, " Holiday ", "uploads/a/src.mp4", 1234, duration=3.0)
    assert (m.state, m.title, m.created_at) == (MediaState.UPLOADED, "Holiday", clock.now())
    job = cat.create_job("transcode", {"media_id": m.id}, owner_id=alice.id, media_id=m.id, work_seconds=3.0)
    m = cat.get_media(m.id)
    assert (m.state, m.job_id) == (MediaState.QUEUED, job.id)

    clock.advance(5)
    att = cat.start_attempt(job.id, "w-1", receive_count=1)
    assert att is not None and att.number == 1
    assert cat.get_media(m.id).state == MediaState.TRANSCODING
    job_now = cat.get_job(job.id)
    assert (job_now.state, job_now.attempts, job_now.worker_id) == (JobState.RUNNING, 1, "w-1")

    cat.report_progress(job.id, att.id, 0.5, speed=2.0, eta=1.5)
    assert cat.get_media(m.id).progress == 0.5
    assert (cat.get_job(job.id).speed, cat.get_job(job.id).eta) == (2.0, 1.5)
    cat.set_media_progress(m.id, 7.0)  # clamped
    assert cat.get_media(m.id).progress == 1.0

    clock.advance(10)
    prefix = f"media/{m.id}/{att.id}/"
    assert cat.publish_media(
        m.id,
        job.id,
        att.id,
        prefix,
        prefix + "master.m3u8",
        LADDER,
        prefix + "thumb.jpg",
        None,
        duration=3.04,
        width=1280,
        height=720,
    )
    m = cat.get_media(m.id)
    assert m.state == MediaState.COMPLETE
    assert (m.published_prefix, m.master_key, m.thumbnail_key) == (
        prefix,
        prefix + "master.m3u8",
        prefix + "thumb.jpg",
    )
    assert m.renditions == LADDER
    assert (m.duration, m.width, m.height, m.progress) == (3.04, 1280, 720, 1.0)
    done = cat.get_job(job.id)
    assert (done.state, done.finished_at, done.result) == (
        JobState.SUCCEEDED,
        clock.now(),
        {"prefix": prefix},
    )
    assert [a.won for a in cat.attempts(job.id)] == [True]


def test_set_media_state_checks_the_state_machine(cat: SqlCatalog, alice: User) -> None:
    m = cat.create_media(alice.id, "t", "src/a.mp4", 1)
    with pytest.raises(IllegalTransition):
        cat.set_media_state(m.id, MediaState.COMPLETE)
    with pytest.raises(IllegalTransition):
        cat.set_media_state(m.id, MediaState.TRANSCODED)
    assert cat.get_media(m.id).state == MediaState.UPLOADED  # nothing changed
    cat.set_media_state(m.id, MediaState.QUEUED)
    cat.set_media_state(m.id, MediaState.TRANSCODING)
    cat.set_media_state(m.id, MediaState.TRANSCODED)
    cat.set_media_state(m.id, MediaState.COMPLETE)
    with pytest.raises(IllegalTransition):
        cat.set_media_state(m.id, MediaState.FAILED)
    m2 = cat.create_media(alice.id, "t2", "src/b.mp4", 1)
    failed = cat.set_media_state(m2.id, MediaState.FAILED, error="not a video: no streams")
    assert (failed.state, failed.error) == (MediaState.FAILED, "not a video: no streams")


def test_bad_media_input_is_refused(cat: SqlCatalog, alice: User) -> None:
    with pytest.raises(InvalidKey):
        cat.create_media(alice.id, "t", "../etc/passwd", 1)
    with pytest.raises(EbbtideError):
        cat.create_media(alice.id, "   ", "src/a.mp4", 1)
    with pytest.raises(EbbtideError):
        cat.create_media(alice.id, "t", "src/a.mp4", -1)
    with pytest.raises(NotFound):
        cat.create_media("0" * 32, "t", "src/a.mp4", 1)
    m = cat.create_media(alice.id, "t", "src/a.mp4", 1, media_id="my-id")
    with pytest.raises(EbbtideError, match="already exists"):
        cat.create_media(alice.id, "t", "src/a.mp4", 1, media_id="my-id")
    with pytest.raises(EbbtideError):
        cat.create_job("transcode", {"x": object()}, media_id=m.id)
    assert cat.list_jobs() == [] and [x.id for x in cat.list_media()] == ["my-id"]


def test_owner_scoping_hides_other_users_rows(cat: SqlCatalog, alice: User, bob: User) -> None:
    m = cat.create_media(alice.id, "mine", "src/a.mp4", 1)
    job = cat.create_job("transcode", {}, owner_id=alice.id, media_id=m.id)
    assert cat.get_media(m.id, owner_id=alice.id).id == m.id
    assert cat.get_job(job.id, owner_id=alice.id).id == job.id
    missing = "f" * 32
    for call in (
        lambda: cat.get_media(m.id, owner_id=bob.id),
        lambda: cat.rename_media(m.id, bob.id, "stolen"),
        lambda: cat.delete_media(m.id, owner_id=bob.id),
        lambda: cat.get_job(job.id, owner_id=bob.id),
        lambda: cat.create_job("transcode", {}, owner_id=bob.id, media_id=m.id),
    ):
        with pytest.raises(NotFound) as e:
            call()
        # the same words as for a row that does not exist: nothing is revealed
        assert "not found" in e.value.message and bob.id not in e.value.message
    with pytest.raises(NotFound) as e2:
        cat.get_media(missing, owner_id=bob.id)
    assert e2.value.message.replace(missing, "ID") == f"media {m.id} not found".replace(m.id, "ID")
    assert cat.list_media(owner_id=bob.id) == []
    assert [x.id for x in cat.list_media(owner_id=alice.id)] == [m.id]
    assert cat.get_media(m.id).title == "mine"
    assert cat.rename_media(m.id, alice.id, "renamed").title == "renamed"


def test_delete_media_fails_its_open_jobs(cat: SqlCatalog, alice: User) -> None:
    m = cat.create_media(alice.id, "t", "src/a.mp4", 1)
    queued = cat.create_job("transcode", {}, owner_id=alice.id, media_id=m.id)
    running = cat.create_job("transcode-chunk", {}, owner_id=alice.id, media_id=m.id)
    att = cat.start_attempt(running.id, "w-1", 1)
    assert att is not None
    gone = cat.delete_media(m.id, owner_id=alice.id)
    assert gone.id == m.id
    with pytest.raises(NotFound):
        cat.get_media(m.id)
    for j in (queued, running):
        j2 = cat.get_job(j.id)
        assert (j2.state, j2.error) == (JobState.FAILED, "deleted")
    # the running attempt's late publish loses: the caller deletes its own prefix
    assert not cat.publish_media(m.id, running.id, att.id, "media/x/", "media/x/m.m3u8", (), None, None)
    assert cat.attempts(running.id)[0].outcome == "duplicate"
    with pytest.raises(EbbtideError, match="deleted"):
        cat.requeue(running.id)
