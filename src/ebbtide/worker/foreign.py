"""Foreign messages: another system's JSON job message, turned into an ebbtide transcode job.

`translate` is pure: it picks the first configured mapping whose fields the message has, fills the
templates and derives the job and media ids from the external id (uuid5), so the same foreign
message always names the same job — a redelivery, or the producer sending it twice, finds the job
already there (idempotent on the external id). `adopt` does the I/O: look the job up, else check
the source object and the owner, then record media and job. Whatever cannot work (no mapping
matches, an unsafe value, a missing object, an unknown owner) is `Unadoptable`, a Permanent error
whose message is the dead letter's reason.
"""

from __future__ import annotations

import logging
import re
import string
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ebbtide.config.sections import IntakeMapping
from ebbtide.errors import NotFound, Permanent
from ebbtide.services import Services
from ebbtide.storage.sources import open_sources, parse_location
from ebbtide.worker.messages import TRANSCODE, JobMessage

log = logging.getLogger(__name__)

_NS = uuid.UUID("6f1c7a52-3f43-4c55-9b7e-0c3e2b1d9a10")
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:=+-]{0,199}$")
EXTERNAL_ID = "external_id"  # the name templates use for the mapped external id


class Unadoptable(Permanent):
    """A foreign message that cannot become a job; the message text is the dead letter's reason."""


@dataclass(frozen=True)
class Translation:
    mapping: str
    external_id: str
    location: str
    owner: str
    title: str
    job_id: str
    media_id: str
    metadata: dict[str, Any] = field(default_factory=dict)


def is_foreign(body: Mapping[str, Any]) -> bool:
    """An ebbtide message names its kind; anything else is someone else's format."""
    return not (isinstance(body.get("kind"), str) and body.get("kind"))


def template_fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def derived_ids(mapping: str, external_id: str) -> tuple[str, str]:
    """(job_id, media_id) for an external id: stable across processes and redeliveries."""
    job = uuid.uuid5(_NS, f"job:{mapping}:{external_id}").hex
    media = uuid.uuid5(_NS, f"media:{mapping}:{external_id}").hex
    return job, media


def _needs(m: IntakeMapping) -> list[str]:
    names = [m.external_id, *m.require, *template_fields(m.source), *template_fields(m.owner)]
    names += [n for n in template_fields(m.title) if n != EXTERNAL_ID]
    return list(dict.fromkeys(names))


def _scalar(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    return text or None


def translate(mappings: tuple[IntakeMapping, ...], body: Mapping[str, Any]) -> Translation:
    """The job a foreign message asks for, or Unadoptable saying why none fits."""
    if not mappings:
        raise Unadoptable("body is missing kind and no intake mapping is configured for foreign messages")
    misses = []
    for m in mappings:
        need = _needs(m)
        missing = [n for n in need if _scalar(body, n) is None]
        if missing:
            misses.append(f"{m.name} needs {', '.join(missing)}")
            continue
        values = {n: str(_scalar(body, n)) for n in need}
        unsafe = [n for n, v in values.items() if not _SAFE.match(v) or ".." in v]
        if unsafe:
            raise Unadoptable(
                f"mapping {m.name}: unsafe value in {', '.join(unsafe)} (letters, digits, ._@:=+- only)"
            )
        ext = values[m.external_id]
        job_id, media_id = derived_ids(m.name, ext)
        meta = {k: body[k] for k in m.metadata if k in body}
        return Translation(
            mapping=m.name, external_id=ext, location=m.source.format(**values),
            owner=m.owner.format(**values), title=m.title.format(**values, **{EXTERNAL_ID: ext})[:200],
            job_id=job_id, media_id=media_id, metadata=meta,
        )  # fmt: skip
    raise Unadoptable("matches no intake mapping: " + "; ".join(misses))


def adopt(services: Services, body: Mapping[str, Any]) -> JobMessage:
    """The ebbtide job for a foreign message, created on first sight (idempotent on the external id)."""
    t = translate(services.settings.intake.mappings, body)
    catalog = services.catalog
    try:
        job = catalog.get_job(t.job_id)
        return JobMessage(job.id, job.kind, job.media_id)
    except NotFound:
        pass
    loc = parse_location(t.location)
    try:
        size = open_sources(services.settings.sources).size(loc)
    except NotFound as e:
        raise Unadoptable(f"mapping {t.mapping}, external id {t.external_id}: {e.message}") from None
    user = catalog.find_user(t.owner)
    if user is None:
        raise Unadoptable(f"mapping {t.mapping}: owner {t.owner!r} is not an ebbtide user")
    try:
        catalog.get_media(t.media_id)
    except NotFound:
        catalog.create_media(user.id, t.title, str(loc), size, media_id=t.media_id)
    payload = {"source_key": str(loc), "intake": {"mapping": t.mapping, "external_id": t.external_id,
                                                  "metadata": t.metadata}}  # fmt: skip
    try:
        job = catalog.create_job(TRANSCODE, payload, owner_id=user.id, media_id=t.media_id, job_id=t.job_id)
    except Exception:  # another worker adopted the same message a moment ago
        job = catalog.get_job(t.job_id)
    log.info("adopted a foreign message", extra={"mapping": t.mapping, "external_id": t.external_id,
                                                 "job_id": job.id, "media_id": t.media_id})  # fmt: skip
    return JobMessage(job.id, job.kind, job.media_id)
