"""A very short video simply works: one frame, and a handful, give a playable ladder and a thumbnail.

The thumbnail used to be taken by seeking to 10 % of the duration, which lies past the only frame
of a 1-frame MP4: the job failed "no thumbnail was produced" although the file is a valid video.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ebbtide.config import MediaConfig
from ebbtide.media.ffmpeg import ffmpeg_path
from ebbtide.media.pipeline import transcode


def _frames(path: Path, n: int) -> Path:
    subprocess.run([ffmpeg_path(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=320x240:rate=25", "-frames:v", str(n), "-pix_fmt", "yuv420p", str(path)],
                   check=True, timeout=60)
    return path


@pytest.mark.parametrize("frames", [1, 3])
def test_a_very_short_video_transcodes_with_a_thumbnail(tmp_path: Path, frames: int) -> None:
    src = _frames(tmp_path / f"f{frames}.mp4", frames)
    result = transcode(src, tmp_path / "out", MediaConfig(preset="ultrafast"))
    thumb = tmp_path / "out" / result.thumbnail
    assert thumb.is_file() and thumb.read_bytes()[:2] == b"\xff\xd8"  # a JPEG
    assert (tmp_path / "out" / result.master).is_file()
    assert [r.name for r in result.renditions] == ["240p"]
    assert 0 < result.duration < 0.2
