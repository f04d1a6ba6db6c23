"""Every config key is read by the code and listed in docs/config.md (issue 15: no dead settings)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from ebbtide.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _keys(model: type[BaseModel], path: str = "", seen: set[type] | None = None) -> Iterator[tuple[str, str]]:
    seen = seen if seen is not None else set()
    for name, field in model.model_fields.items():
        key = f"{path}.{name}" if path else name
        yield key, name
        ann = field.annotation
        for t in (*getattr(ann, "__args__", ()), ann):
            if isinstance(t, type) and issubclass(t, BaseModel) and t not in seen:
                seen.add(t)
                yield from _keys(t, key, seen)
            for inner in getattr(t, "__args__", ()):  # tuple[Rung, ...]
                if isinstance(inner, type) and issubclass(inner, BaseModel) and inner not in seen:
                    seen.add(inner)
                    yield from _keys(inner, key, seen)


def test_every_key_is_read_somewhere_and_documented() -> None:
    src = "\n".join(p.read_text() for p in (ROOT / "src" / "ebbtide").rglob("*.py")
                    if p.parent.name != "config")
    doc = (ROOT / "docs" / "config.md").read_text()
    pattern = r"\.{n}\b|[\"']{n}[\"']"
    unread = [k for k, n in _keys(Settings) if n != "data_dir" and not re.search(pattern.format(n=n), src)]
    undocumented = [k for k, n in _keys(Settings) if not re.search(rf"\b{n}\b", doc)]
    assert unread == [], f"config keys no code reads: {unread}"
    assert undocumented == [], f"config keys missing from docs/config.md: {undocumented}"
