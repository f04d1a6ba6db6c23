"""Chunked transcoding in the simulator: how an upload becomes parts, with the real planning code.

The split uses the same pure functions as the worker (`media.chunks.plan_split` with the goal
of `fleet.split_goal`, `plan_chunks`) on what the fleet offers when the upload arrives. Each chunk is a
job of its own (queued, leased, retried like any other) whose work is its media span, plus a
per-chunk start-up overhead (process start, probe, seek) and a ranged download of only its
bytes. The audio is one cheap part. The upload is ready a stitch time after its last part, and
first playable when chunk 1 and the audio are in.

The split is the upload's own `transcode` job, run by a worker like any job (it holds that
worker): it reads what the probe needs and queues the parts. What it reads follows production
(`worker/handlers/transcode.py`): the capped probe reads a presigned URL of the source by ranges,
only the container's index (`ranged_probe=True`, the default); `ranged_probe=False` is the old
whole-source download before the probe, kept as a what-if.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

from ebbtide.config.sections import MediaConfig
from ebbtide.media.chunks import FIRST_CHUNK_WEIGHT, PoolCapacity, SplitGoal, plan_chunks, plan_split
from ebbtide.sim.workloads import JobSpec

PART = "#"  # part ids: "<upload id>#c003", "<upload id>#aud"


@dataclass(frozen=True)
class ChunkModel:
    min_chunk_seconds: float = MediaConfig().chunk_min_seconds
    max_chunks: int = MediaConfig().max_chunks
    split_seconds: float = 5.0  # the transcode job: process start, probe, catalog rows, messages
    ranged_probe: bool = True  # True: the split probes by ranged reads (production); False: what-if download
    index_bytes_per_second: float = 600.0
    # what-if: the first chunk's share (production plans with media.chunks.FIRST_CHUNK_WEIGHT)
    first_weight: float = FIRST_CHUNK_WEIGHT  # an MP4 index (moov: stsz, stco, ctts) per media second
    overhead_seconds: float = 15.0  # per chunk: start, probe through a URL, seek, first upload
    stitch_seconds: float = 10.0  # manifests in, playlists out, one catalog transaction
    audio_speed: float = 60.0  # AAC encodes this many times faster than the video ladder
    segment_seconds: float = MediaConfig().segment_seconds
    gop_seconds: float = MediaConfig().gop_seconds


def split_read_bytes(spec: JobSpec, model: ChunkModel) -> int:
    """Bytes the split step reads: the whole source, or only the index a ranged probe asks for."""
    if not model.ranged_probe:
        return spec.size_bytes
    return min(spec.size_bytes, int(64 * 1024 + spec.media_seconds * model.index_bytes_per_second))


def split_step(spec: JobSpec, model: ChunkModel) -> JobSpec:
    """The split as a job of its own for timing: no media to encode, its read, its fixed cost."""
    return replace(spec, kind="transcode-split", media_seconds=0.0, size_bytes=split_read_bytes(spec, model),
                   overhead=model.split_seconds)  # fmt: skip


def split(spec: JobSpec, pools: list[PoolCapacity], model: ChunkModel, goal: SplitGoal) -> list[JobSpec]:
    """The parts of one upload (an empty list: encode it whole), planned by `media.chunks.plan_split`."""
    if spec.kind != "transcode":
        return []
    goal = replace(goal, min_chunk_seconds=model.min_chunk_seconds, max_chunks=model.max_chunks,
                   overhead_seconds=model.overhead_seconds, stitch_seconds=model.stitch_seconds,
                   first_weight=model.first_weight)  # fmt: skip
    n = plan_split(spec.media_seconds, pools, goal).count
    if n <= 1:
        return []
    fps = Fraction(30)
    chunks = plan_chunks(spec.media_seconds, fps, round(model.gop_seconds * 30), model.segment_seconds, n,
                         model.first_weight)  # fmt: skip
    if len(chunks) <= 1:
        return []
    bps = spec.size_bytes / max(spec.media_seconds, 1e-6)
    parts = [
        replace(spec, id=f"{spec.id}{PART}aud", media_seconds=spec.media_seconds / model.audio_speed,
                size_bytes=int(spec.size_bytes * 0.02), kind="transcode-audio", parent=spec.id,
                overhead=model.overhead_seconds),
    ]  # fmt: skip
    for c in chunks:
        length = (c.end if c.end is not None else spec.media_seconds) - c.start
        # a ranged read: its own span plus the GOP before it and a second after
        read = int(bps * min(spec.media_seconds, length + model.gop_seconds + 1.0))
        parts.append(
            replace(spec, id=f"{spec.id}{PART}c{c.index:03d}", media_seconds=length, size_bytes=read,
                    kind="transcode-chunk", parent=spec.id, overhead=model.overhead_seconds)
        )  # fmt: skip
    return parts
