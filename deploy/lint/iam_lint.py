"""Run parliament on every IAM policy of a generated template (run with the lint venv's python).

parliament reads plain JSON policies, so CloudFormation intrinsics are first resolved to sample
values (account 123456789012, region us-east-1, resource names from the logical ids). Findings
above `low` fail the run unless their issue code is listed in ALLOWED with the reason, which
docs/deploy.md repeats for the reviewer.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from parliament import analyze_policy_string, config

SAMPLES = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
           "AWS::StackName": "ebbtide"}
# issue code -> why it stays (none today; docs/deploy.md lists the low ones that are printed)
ALLOWED: dict[str, str] = {}
FAIL = {"MEDIUM", "HIGH", "CRITICAL", "UNKNOWN"}


def sample(logical: str, attribute: str | None = None) -> str:
    name = re.sub(r"(?<!^)(?=[A-Z])", "-", logical).lower()
    if attribute == "Arn":
        if "Queue" in logical:
            return f"arn:aws:sqs:us-east-1:123456789012:{name}"
        if "Role" in logical or "Profile" in logical:
            return f"arn:aws:iam::123456789012:role/{name}"
        if "Logs" in logical:
            return f"arn:aws:logs:us-east-1:123456789012:log-group:/ebbtide/{name}"
        return f"arn:aws:s3:::{name}"
    if "Template" in logical:
        return "lt-0123456789abcdef0"
    return name


def resolve(node: Any) -> Any:
    if isinstance(node, list):
        return [resolve(n) for n in node]
    if not isinstance(node, dict):
        return node
    if "Ref" in node:
        return SAMPLES.get(node["Ref"]) or sample(node["Ref"])
    if "Fn::GetAtt" in node:
        return sample(*node["Fn::GetAtt"])
    if "Fn::Sub" in node:
        arg = node["Fn::Sub"]
        text, values = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def fill(m: re.Match[str]) -> str:
            key = m.group(1)
            if key in values:
                return str(resolve(values[key]))
            if key in SAMPLES:
                return SAMPLES[key]
            logical, _, attribute = key.partition(".")
            return sample(logical, attribute or None)

        return re.sub(r"\$\{([^}!]+)\}", fill, text)
    return {k: resolve(v) for k, v in node.items()}


def policies(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for lid, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::ManagedPolicy":
            out.append((lid, props["PolicyDocument"]))
        elif res["Type"] == "AWS::IAM::Role":
            out += [(f"{lid}/{p['PolicyName']}", p["PolicyDocument"]) for p in props.get("Policies", [])]
    return out


def main(paths: list[str]) -> int:
    bad = 0
    for path in paths:
        with open(path) as f:
            template = json.load(f)
        docs = policies(template)
        for name, doc in docs:
            for finding in analyze_policy_string(json.dumps(resolve(doc))).findings:
                severity = str(config.get(finding.issue, {}).get("severity", "UNKNOWN")).upper()
                allowed = finding.issue in ALLOWED
                mark = "allowed" if allowed else ("FAIL" if severity in FAIL else "low")
                print(f"{path} {name}: {severity} {finding.issue} {finding.detail} [{mark}]")
                bad += severity in FAIL and not allowed
        print(f"{path}: {len(docs)} policies checked")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
