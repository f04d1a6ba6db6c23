"""A hostile corpus made with the real ffmpeg: small files that ask a worker for too much.

Each entry is tiny on disk (frames are black, most are small) and built in well under a second,
except the pixel bombs, which are single frames of a solid colour."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from ebbtide.media.ffmpeg import ffmpeg_path


def ff(*args: str) -> None:
    subprocess.run([ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=60)


def gap_clip(out: Path, gap_s: float, size: str = "64x64", frames: int = 6, jitter: bool = False) -> Path:
    """`frames` black frames at 30 fps whose timestamps jump by `gap_s` half-way (VFR if `jitter`)."""
    j = "+if(eq(mod(N,3),1),0.012,0)" if jitter else ""
    pts = f"(N/30{j}+if(gte(N,{frames // 2}),{gap_s},0))/TB"
    # a coarse MP4 timescale, so days fit in its 32-bit durations instead of wrapping
    ts = ["-video_track_timescale", "1000"] if out.suffix == ".mp4" else []
    ff(
        "-f", "lavfi", "-i", f"color=black:size={size}:rate=30", "-frames:v", str(frames),
        "-vf", f"setpts='{pts}'", "-fps_mode", "passthrough", "-c:v", "libx264", "-preset", "ultrafast",
        "-g", "2", "-enc_time_base:v", "1/1000", *ts, str(out),
    )  # fmt: skip
    return out


def image_bomb(out: Path, codec: str, size: str) -> Path:
    """One frame of `codec` (png / mjpeg) at `size`, in the container `out`'s extension names."""
    extra = ["-pix_fmt", "yuvj420p"] if codec == "mjpeg" else []
    ff(
        "-f",
        "lavfi",
        "-i",
        f"color=gray:size={size}:rate=1",
        "-frames:v",
        "1",
        "-c:v",
        codec,
        *extra,
        str(out),
    )
    return out


def many_streams(out: Path, n: int) -> Path:
    args = ["-f", "lavfi", "-i", "color=black:size=64x64:rate=10:duration=1"]
    args += ["-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "1", "-map", "0:v"]
    for _ in range(n):
        args += ["-map", "1:a"]
    ff(*args, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "pcm_s16le", "-shortest", str(out))
    return out


def playlist(out: Path, target: str) -> Path:
    out.write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        f"#EXTINF:2.0,\n{target}\n#EXT-X-ENDLIST\n"
    )
    return out


def concat_list(out: Path, target: str) -> Path:
    out.write_text(f"ffconcat version 1.0\nfile '{target}'\n")
    return out


Maker = Callable[[Path], Path]


def corpus(victim: Path, url: str) -> dict[str, tuple[str, Maker]]:
    """name → (upload file name, maker). `victim` is another user's media on this host; `url` a
    local HTTP server that must never be contacted."""
    return {
        "gap-12h": ("gap.mkv", lambda d: gap_clip(d / "gap12h.mkv", 12 * 3600)),
        "gap-3d": ("gap.mp4", lambda d: gap_clip(d / "gap3d.mp4", 3 * 86400)),
        "vfr-gap-10min": ("vfr.mp4", lambda d: gap_clip(d / "vfr.mp4", 600, frames=20, jitter=True)),
        "png-bomb-mkv": ("bomb.mkv", lambda d: image_bomb(d / "bomb.mkv", "png", "5000x5000")),
        "mjpeg-bomb-mp4": ("bomb.mp4", lambda d: image_bomb(d / "bomb.mp4", "mjpeg", "4200x4200")),
        "many-streams": ("streams.mkv", lambda d: many_streams(d / "streams.mkv", 40)),
        "m3u8-local": ("evil.m3u8", lambda d: playlist(d / "a.m3u8", str(victim))),
        "m3u8-file-url": ("evil.m3u8", lambda d: playlist(d / "b.m3u8", f"file:{victim}")),
        "m3u8-127": ("evil.m3u8", lambda d: playlist(d / "c.m3u8", f"{url}/seg.ts")),
        "m3u8-named-mp4": ("clip.mp4", lambda d: playlist(d / "d.m3u8", str(victim))),
        "ffconcat-local": ("list.ffconcat", lambda d: concat_list(d / "e.txt", str(victim))),
        "ffconcat-127": ("list.txt", lambda d: concat_list(d / "f.txt", f"{url}/x.mp4")),
        "png-image": ("frame.png", lambda d: image_bomb(d / "g.png", "png", "64x64")),
    }
