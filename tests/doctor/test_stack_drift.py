"""The pure half of `doctor --aws --stack`: what a generated template promises, and the findings
when live values differ. The live half runs against moto in tests/deploy/test_stack_moto.py."""

from __future__ import annotations

import json

import yaml

from ebbtide.config import Settings
from ebbtide.deploy.stack import template
from ebbtide.doctor.stack_drift import (
    DeployedStack,
    Live,
    compare,
    expectations,
    parse_template,
    status_findings,
)


def _settings() -> Settings:
    return Settings.model_validate(
        {
            "queue": {"url": "sqs://t-jobs", "lease": 90, "max_receives": 4},
            "aws": {"stack_name": "t"},
            "fleet": {
                "pools": [
                    {"name": "spot", "provider": "ec2", "spot": True, "max": 2},
                    {"name": "od", "provider": "asg", "max": 3},
                ]
            },
        }
    )


def _physical(tpl: dict[str, object]) -> dict[str, str]:
    return {lid: f"phys-{lid}" for lid in tpl["Resources"]}  # type: ignore[attr-defined]


def test_the_generated_template_gives_the_values_to_watch() -> None:
    tpl = template(_settings())
    got = {e.logical_id: e for e in expectations(tpl, _physical(tpl))}
    assert dict(got["JobQueue"].properties) == {
        "VisibilityTimeout": "90",
        "ReceiveMessageWaitTimeSeconds": "20",
        "RedrivePolicy.maxReceiveCount": "4",
    }
    group = next(e for e in got.values() if e.type == "AWS::AutoScaling::AutoScalingGroup")
    assert dict(group.properties) == {
        "MinSize": "0",
        "MaxSize": "3",
        "NewInstancesProtectedFromScaleIn": "true",
    }
    templates = [e for e in got.values() if e.type == "AWS::EC2::LaunchTemplate"]
    assert len(templates) == 2 and all(not e.properties for e in templates)
    assert any(e.type == "AWS::S3::Bucket" for e in got.values())
    # a resource CloudFormation has not made (no physical id) is not expected yet
    assert "JobQueue" not in {e.logical_id for e in expectations(tpl, {})}


def test_matching_live_values_give_no_finding_and_each_difference_one() -> None:
    tpl = template(_settings())
    expected = expectations(tpl, _physical(tpl))
    same = {e.logical_id: Live(dict(e.properties)) for e in expected}
    assert compare("t", expected, same) == []

    drifted = dict(same)
    drifted["JobQueue"] = Live({**same["JobQueue"].properties, "VisibilityTimeout": "30"})
    gone = next(e.logical_id for e in expected if e.type == "AWS::EC2::LaunchTemplate")
    drifted[gone] = Live(None)
    found = compare("t", expected, drifted)
    assert sorted(f.code for f in found) == ["stack-drift", "stack-missing"]
    assert all(f.severity == "error" for f in found)
    drift = next(f for f in found if f.code == "stack-drift")
    assert "VisibilityTimeout is 30, the stack says 90" in drift.what
    missing = next(f for f in found if f.code == "stack-missing")
    assert f"phys-{gone}" in missing.what and "ebbtide aws deploy" in missing.fix


def test_a_redrive_policy_removed_by_hand_is_drift() -> None:
    tpl = template(_settings())
    expected = [e for e in expectations(tpl, _physical(tpl)) if e.logical_id == "JobQueue"]
    live = {"JobQueue": Live({"VisibilityTimeout": "90", "ReceiveMessageWaitTimeSeconds": "20"})}
    (f,) = compare("t", expected, live)
    assert "maxReceiveCount is unset" in f.what


def test_templates_come_back_as_json_yaml_or_a_mapping() -> None:
    tpl = {"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 5}}}}
    for body in (tpl, json.dumps(tpl), yaml.safe_dump(tpl)):
        assert parse_template(body) == tpl


def test_an_unsettled_stack_is_reported() -> None:
    def stack(status: str) -> DeployedStack:
        return DeployedStack("t", status, {}, {}, {})

    assert status_findings(stack("UPDATE_COMPLETE")) == []
    assert [f.severity for f in status_findings(stack("UPDATE_ROLLBACK_COMPLETE"))] == ["error"]
    assert [f.severity for f in status_findings(stack("UPDATE_IN_PROGRESS"))] == ["warning"]
