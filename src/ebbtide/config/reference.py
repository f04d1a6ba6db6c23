"""docs/config.md, generated from the config schema so the page cannot drift from the code.

Every key's default comes from its pydantic field and its text from `Field(description=…)`. Run
`ebbtide config reference --write docs/config.md` (or `make docs`) after adding a key; a test fails
while the committed page differs from what this renders.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, BeforeValidator
from pydantic.fields import FieldInfo

from ebbtide.config.settings import Settings
from ebbtide.config.types import format_duration, format_size, parse_duration, parse_size

GENERATED_BY = "ebbtide config reference --write docs/config.md"

PREAMBLE = """\
# Configuration

<!-- Generated from src/ebbtide/config/ by `{cmd}` (or `make docs`). Do not edit by hand:
     change the Field(description=…) in the schema and regenerate. -->

ebbtide reads one YAML file: `--config FILE`, else `$EBBTIDE_CONFIG`, else `./ebbtide.yaml` if it
exists, else nothing — with no file at all everything runs embedded under `./ebbtide-data/`
(SQLite queue and catalog, a local folder as object store, a `local` pool of worker processes).

Every key can be overridden from the environment: `EBBTIDE_<SECTION>__<KEY>` (double underscore
between levels), e.g. `EBBTIDE_QUEUE__URL=sqs://jobs`, `EBBTIDE_WORKER__LEASE=5m`. Values are read
as YAML scalars.

Durations accept a number of seconds or `250ms`, `90s`, `10m`, `2h`, `1d`; sizes accept bytes or
`5MB`, `2GB` (binary units). An unknown key, a bad URL or a bad value stops the program at start with
the key's path and what is allowed, e.g.

```
error: bad config in ebbtide.yaml: queue.visibility: unknown key
error: bad config in ebbtide.yaml: queue.url: 'amqp://x' is not a supported URL; allowed schemes: sqlite://, sqs://, redis://, rediss://, postgresql://, postgres://
```

A small example, for AWS:

```yaml
queue:   {url: "sqs://transcode-jobs", lease: 2m, max_receives: 5}
catalog: {url: "postgresql://ebbtide@db.internal/ebbtide"}
store:   {url: "s3://my-media-bucket/ebbtide"}
fleet:
  policy: {kind: deadline, target_ready: 30m}
  pools:
    - {name: spot, provider: ec2, spot: true, max: 2, price_per_hour: 0.2256, boot_time: 3m,
       options: {launch_template: ebbtide-worker}}
```
"""

POLICIES = """\
## Scaling policies

| kind | models | keys |
|---|---|---|
| `step` | seed 000/001's ASG step scaling: queue depth → exact capacity | `steps: [{at_least, capacity}]`, `scale_in_after`, `cooldown` |
| `target` | seed 000's ECS target tracking on visible messages | `target_per_worker`, `metric`, `scale_out_cooldown`, `scale_in_cooldown` |
| `sustained` | seed 002's thresholds that must hold | `thresholds: [{at_least, workers}]`, `hold`, `idle_to_zero`, `cap` |
| `deadline` | ebbtide's default: buy paid capacity only for work the free pools cannot finish in time | `target_ready`, `default_job_seconds`, `keep_warm` |
"""


@dataclass(frozen=True)
class Key:
    """One documented key: its dotted path (`fleet.pools[].max`), default and description."""

    path: str
    default: str
    description: str


@dataclass(frozen=True)
class Block:
    title: str
    keys: tuple[Key, ...]


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    """The models a field holds: itself, inside Optional, a tuple/list, or a union of kinds."""
    found: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    for arg in typing.get_args(annotation):
        for m in _nested_models(arg):
            if m not in found:
                found.append(m)
    return found


def _is_sequence(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (tuple, list):
        return True
    return any(_is_sequence(a) for a in typing.get_args(annotation) if a is not type(None))


def _has_parser(field: FieldInfo, parser: Any) -> bool:
    def walk(meta: Any) -> bool:
        if isinstance(meta, BeforeValidator) and meta.func is parser:
            return True
        return any(walk(a) for a in typing.get_args(meta))

    return any(walk(m) for m in field.metadata) or walk(field.annotation)


def format_default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and _has_parser(field, parse_duration):
        return f"`{format_duration(value)}`"
    if isinstance(value, int) and _has_parser(field, parse_size):
        return f"`{format_size(value)}`"
    if isinstance(value, BaseModel):
        kind = getattr(value, "kind", None)
        return f"`{{kind: {kind}}}`" if kind else "see below"
    if value == "":
        return '`""`'
    if isinstance(value, tuple | list | dict) and not value:
        return f"`{'{}' if isinstance(value, dict) else '[]'}`"
    if isinstance(value, tuple | list):
        dumped = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
        return f"`{yaml.safe_dump(dumped, default_flow_style=True, sort_keys=False, width=10_000).strip()}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    return f"`{value}`"


def blocks(model: type[BaseModel] = Settings, prefix: str = "", title: str = "top level") -> list[Block]:
    """Walk the schema depth first: one block per model, nested models after their parent's keys."""
    keys: list[Key] = []
    later: list[Block] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        nested = _nested_models(field.annotation)
        is_section = model is Settings and nested and field.annotation is nested[0]
        if not is_section:
            keys.append(Key(path, format_default(field), field.description or ""))
        suffix = "[]" if _is_sequence(field.annotation) else ""
        for sub in nested:
            kind = sub.model_fields.get("kind")
            sub_title = f"{path}{suffix}"
            if kind is not None and len(nested) > 1:
                sub_title += f" (kind: {kind.default})"
            later.extend(blocks(sub, f"{path}{suffix}.", sub_title))
    own = [Block(title, tuple(keys))] if keys else []
    return own + later


def all_keys() -> list[Key]:
    return [k for b in blocks() for k in b.keys]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_reference() -> str:
    out = [PREAMBLE.replace("{cmd}", GENERATED_BY), "## Keys\n"]
    for b in blocks():
        out.append(f"### {b.title}\n")
        out.append("| key | default | description |")
        out.append("|---|---|---|")
        for k in b.keys:
            out.append(f"| `{k.path}` | {_cell(k.default)} | {_cell(k.description)} |")
        out.append("")
    out.append(POLICIES)
    return "\n".join(out)
