"""Synthetic test clips made with lavfi: every part's tests and `ebbtide up --demo` use these.

testsrc2 plus temporal noise gives real motion and detail, so encoders do realistic work;
a sine tone gives an audio track to carry.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ebbtide.media.errors import MediaError
from ebbtide.media.ffmpeg import run_ffmpeg

_KNOWN = {"portrait", "pix_fmt", "rotation", "vfr", "noise", "preset", "faststart", "crf", "gop"}


def generate_clip(
    path: Path,
    seconds: float = 3,
    width: int = 320,
    height: int = 240,
    fps: float = 30,
    audio: bool = True,
    **variations: Any,
) -> Path:
    """Write an H.264 (+AAC) clip to `path` and return it.

    Variations:
      portrait=True         swap width and height if the frame is landscape
      pix_fmt="yuv420p10le" 10-bit High 10 video (any x264 pix_fmt works)
      rotation=90           display-matrix rotation metadata (pixels stay landscape)
      vfr=True              drop an irregular pattern of frames: variable frame rate
      noise=6               temporal noise strength (0 = clean testsrc2)
      preset="ultrafast"    x264 preset of the clip itself
      crf=23                x264 quality of the clip
      faststart=True        moov atom in front (mp4 only)
      gop=60                keyframe interval of the clip, in frames (x264's default is 250)
    """
    unknown = set(variations) - _KNOWN
    if unknown:
        raise MediaError(
            f"generate_clip: unknown variation(s) {sorted(unknown)}", hint=f"known: {sorted(_KNOWN)}"
        )
    if variations.get("portrait") and width > height:
        width, height = height, width
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = int(variations.get("noise", 6))
    vf = f"testsrc2=size={width}x{height}:rate={fps:g}:duration={seconds:g}"
    if noise > 0:
        vf += f",noise=alls={noise}:allf=t+u"
    if variations.get("vfr"):
        # Irregular drops (every 5th and every 7th frame) keep timestamps: true VFR.
        vf += r",select='not(eq(mod(n\,5)\,0))*not(eq(mod(n\,7)\,0))'"
    args = ["-y", "-loglevel", "error", "-f", "lavfi", "-i", vf]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds:g}"]
    args += [
        "-map", "0:v",
        "-c:v", "libx264",
        "-preset", str(variations.get("preset", "ultrafast")),
        "-crf", str(variations.get("crf", 23)),
        "-pix_fmt", str(variations.get("pix_fmt", "yuv420p")),
    ]  # fmt: skip
    if variations.get("gop"):
        args += ["-g", str(int(variations["gop"]))]
    if variations.get("vfr"):
        args += ["-fps_mode", "vfr"]
    if audio:
        args += ["-map", "1:a", "-c:a", "aac", "-b:a", "96k", "-ac", "2"]
    if variations.get("faststart") and path.suffix.lower() in (".mp4", ".mov", ".m4v"):
        args += ["-movflags", "+faststart"]
    rotation = variations.get("rotation")
    if not rotation:
        run_ffmpeg([*args, str(path)], what="generate_clip", timeout=600)
        return path
    # Rotation metadata is set by remuxing with an input display matrix.
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        plain = Path(tmp) / f"plain{path.suffix}"
        run_ffmpeg([*args, str(plain)], what="generate_clip", timeout=600)
        run_ffmpeg(
            ["-y", "-loglevel", "error", "-display_rotation", f"{float(rotation):g}", "-i", str(plain),
             "-c", "copy", str(path)],
            what="generate_clip (rotation)",
        )  # fmt: skip
    return path
