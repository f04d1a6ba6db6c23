"""CloudFormation intrinsics and names, so the generator reads like the template it writes."""

from __future__ import annotations

import re
from typing import Any

Json = dict[str, Any]


def ref(name: str) -> Json:
    return {"Ref": name}


def att(name: str, attribute: str) -> Json:
    return {"Fn::GetAtt": [name, attribute]}


def sub(text: str, **values: Any) -> Json:
    return {"Fn::Sub": [text, values]} if values else {"Fn::Sub": text}


def arn(service: str, resource: str, region: bool = True, account: bool = True) -> Json:
    """`arn:<partition>:<service>:<region>:<account>:<resource>`; `resource` may hold ${…}."""
    r = "${AWS::Region}" if region else ""
    a = "${AWS::AccountId}" if account else ""
    return sub(f"arn:${{AWS::Partition}}:{service}:{r}:{a}:{resource}")


def logical_id(*parts: str) -> str:
    """`spot-2`, `od` → `Spot2Od`: CloudFormation logical ids are alphanumeric."""
    words = [w for p in parts for w in re.split(r"[^A-Za-z0-9]+", p) if w]
    return "".join(w[:1].upper() + w[1:] for w in words)


def tags(**kv: str) -> list[Json]:
    return [{"Key": k, "Value": v} for k, v in kv.items()]
