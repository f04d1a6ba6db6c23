"""Pure helpers: playlist rewriting and upload filename sanitising."""

from __future__ import annotations

import pytest

from ebbtide.errors import InvalidKey
from ebbtide.web.playlists import content_type_for, rewrite
from ebbtide.web.uploads import safe_filename

MASTER = """#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="audio",URI="audio/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,AUDIO="aud"
360p/index.m3u8
"""

VARIANT = """#EXTM3U
#EXT-X-MAP:URI="init_0.mp4"
#EXTINF:2.0,
seg_00000.m4s
#EXTINF:2.0,
https://cdn.example/abs.m4s
#EXT-X-ENDLIST
"""


def test_rewrite_master_and_variant() -> None:
    seen: list[str] = []

    def resolve(rel: str) -> str:
        seen.append(rel)
        return f"SIGNED({rel})"

    out = rewrite(MASTER, "master.m3u8", resolve)
    assert 'URI="SIGNED(audio/index.m3u8)"' in out and "SIGNED(360p/index.m3u8)" in out
    out = rewrite(VARIANT, "360p/index.m3u8", resolve)
    assert 'URI="SIGNED(360p/init_0.mp4)"' in out and "SIGNED(360p/seg_00000.m4s)" in out
    assert "https://cdn.example/abs.m4s" in out  # absolute URIs are left alone
    assert seen == ["audio/index.m3u8", "360p/index.m3u8", "360p/init_0.mp4", "360p/seg_00000.m4s"]


def test_rewrite_refuses_escapes() -> None:
    with pytest.raises(InvalidKey):
        rewrite("#EXTM3U\n../../other-user/seg.m4s\n", "360p/index.m3u8", lambda r: r)


def test_content_types() -> None:
    assert content_type_for("a/b.m3u8") == "application/vnd.apple.mpegurl"
    assert content_type_for("seg.m4s") == "video/mp4"
    assert content_type_for("seg.TS") == "video/mp2t"
    assert content_type_for("t.jpg") == "image/jpeg"
    assert content_type_for("x.bin") == "application/octet-stream"


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("My clip (1).mp4", "My_clip_1_.mp4"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\video.MOV", "video.MOV"),
        ("..", "upload.bin"),
        ("", "upload.bin"),
        ("ünïcødé.mkv", "n_c_d_.mkv"),
    ],
)
def test_safe_filename(raw: str, safe: str) -> None:
    assert safe_filename(raw) == safe
