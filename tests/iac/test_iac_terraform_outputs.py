"""``load_terraform_outputs`` turns ``terraform output -json`` into an ``aws`` environment's
values, and says exactly which output is missing or malformed (IAC-1)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from deployops.config.terraform_outputs import (
    OUTPUT_NAMES,
    TerraformOutputs,
    load_terraform_outputs,
)
from deployops.errors import EXIT_USAGE, ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "terraform-output.json"


def _example() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return loaded


def _write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "tf-outputs.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _paths(error: ConfigError) -> list[str]:
    return [issue.path for issue in error.issues]


def test_iac1_example_loads() -> None:
    """The checked-in sample is what `terraform output -json` writes for this tree."""
    assert load_terraform_outputs(EXAMPLE) == TerraformOutputs(
        cluster="deployops-production",
        cluster_arn="arn:aws:ecs:ap-northeast-1:123456789012:cluster/deployops-production",
        service="deployops-production",
        region="ap-northeast-1",
        prod_listener_arn=(
            "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:"
            "listener/app/deployops-production/50dc6c495c0c9188/f2f7dc8efc522ab2"
        ),
        test_listener_arn=(
            "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:"
            "listener/app/deployops-production/50dc6c495c0c9188/0467ef3c8400ae65"
        ),
        blue_target_group_arn=(
            "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:"
            "targetgroup/deployops-production-blue/0123456789abcdef"
        ),
        green_target_group_arn=(
            "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:"
            "targetgroup/deployops-production-green/fedcba9876543210"
        ),
        db_endpoint="deployops-production.abcdefghijkl.ap-northeast-1.rds.amazonaws.com:5432",
        alert_topic_arn="arn:aws:sns:ap-northeast-1:123456789012:deployops-production-alerts",
        critical_topic_arn=(
            "arn:aws:sns:ap-northeast-1:123456789012:deployops-production-critical-alerts"
        ),
    )


def test_iac1_example_has_exactly_the_root_outputs() -> None:
    """The sample stays in step with infrastructure/outputs.tf."""
    declared = set(
        re.findall(
            r'^output "(\w+)"',
            (ROOT / "infrastructure" / "outputs.tf").read_text(encoding="utf-8"),
            re.MULTILINE,
        )
    )
    assert set(_example()) == declared
    assert set(OUTPUT_NAMES) <= declared


def test_outputs_are_frozen() -> None:
    outputs = load_terraform_outputs(EXAMPLE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        outputs.cluster = "other"  # type: ignore[misc]


def test_missing_output_names_its_path_and_the_fix(tmp_path: Path) -> None:
    document = _example()
    del document["cluster_name"]
    path = _write(tmp_path, document)
    with pytest.raises(ConfigError) as caught:
        load_terraform_outputs(path)
    error = caught.value
    assert error.exit_code == EXIT_USAGE
    assert _paths(error) == ["outputs.cluster_name"]
    issue = error.issues[0]
    assert issue.file == str(path)
    assert "missing" in issue.message
    assert "infrastructure/outputs.tf" in issue.message
    assert f"{path}:outputs.cluster_name: missing" in str(error)
    assert "terraform -chdir=infrastructure output -json" in str(error)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    document = _example()
    del document["service_name"]
    del document["green_target_group_arn"]
    document["db_endpoint"]["value"] = 5432
    with pytest.raises(ConfigError) as caught:
        load_terraform_outputs(_write(tmp_path, document))
    assert _paths(caught.value) == [
        "outputs.service_name",
        "outputs.green_target_group_arn",
        "outputs.db_endpoint.value",
    ]


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "tf-outputs.json"
    path.write_text("Outputs:\n\ncluster_name = deployops\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_terraform_outputs(path)
    assert _paths(caught.value) == ["outputs"]
    assert "not valid JSON (line 1, column 1" in caught.value.issues[0].message
    assert "terraform output -json" in str(caught.value)


def test_not_an_object(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_terraform_outputs(_write(tmp_path, ["deployops-production"]))
    assert _paths(caught.value) == ["outputs"]
    assert "got a list" in caught.value.issues[0].message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(ConfigError) as caught:
        load_terraform_outputs(path)
    assert _paths(caught.value) == ["outputs"]
    assert caught.value.issues[0].file == str(path)
    assert "terraform_outputs" in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, "expected a string, got a number"),
        (True, "expected a string, got a boolean"),
        (None, "expected a string, got null"),
        (["a"], "expected a string, got a list"),
        ({"a": "b"}, "expected a string, got an object"),
    ],
)
def test_wrong_type(tmp_path: Path, value: object, expected: str) -> None:
    document = _example()
    document["cluster_name"]["value"] = value
    with pytest.raises(ConfigError) as caught:
        load_terraform_outputs(_write(tmp_path, document))
    assert _paths(caught.value) == ["outputs.cluster_name.value"]
    assert caught.value.issues[0].message.startswith(expected)


def test_entry_without_value_wrapper(tmp_path: Path) -> None:
    """A hand-written {"name": "string"} file is not what `terraform output -json` writes."""
    document = _example()
    document["region"] = "ap-northeast-1"
    with pytest.raises(ConfigError) as caught:
        load_terraform_outputs(_write(tmp_path, document))
    assert _paths(caught.value) == ["outputs.region"]
    assert '"value"' in caught.value.issues[0].message


@pytest.mark.parametrize(
    ("output", "value", "expected"),
    [
        ("prod_listener_arn", "arn:aws:sns:ap-northeast-1:123456789012:x", "not a listener ARN"),
        ("blue_target_group_arn", "deployops-blue", "not a target group ARN"),
        ("cluster_arn", "arn:aws:ecs:ap-northeast-1:123456789012:service/x/y", "ECS cluster ARN"),
        ("region", "Tokyo", "not an AWS region"),
        ("db_endpoint", "db.example.internal", "host:port"),
        ("alert_topic_arn", "", "not an SNS topic ARN"),
    ],
)
def test_malformed_value(tmp_path: Path, output: str, value: str, expected: str) -> None:
    document = _example()
    document[output]["value"] = value
    with pytest.raises(ConfigError) as caught:
        load_terraform_outputs(_write(tmp_path, document))
    assert _paths(caught.value) == [f"outputs.{output}.value"]
    assert expected in caught.value.issues[0].message


def test_arns_from_another_region_are_refused(tmp_path: Path) -> None:
    """Cross-field pass: outputs of two stacks (primary and recovery region) mixed in one file."""
    document = _example()
    document["critical_topic_arn"]["value"] = (
        "arn:aws:sns:ap-northeast-3:123456789012:deployops-production-critical-alerts"
    )
    with pytest.raises(ConfigError) as caught:
        load_terraform_outputs(_write(tmp_path, document))
    assert _paths(caught.value) == ["outputs.critical_topic_arn.value"]
    assert "'ap-northeast-3'" in caught.value.issues[0].message


def test_extra_and_sensitive_outputs_are_accepted(tmp_path: Path) -> None:
    document = _example()
    document["something_new"] = {"sensitive": True, "type": "string", "value": "x"}
    document["db_endpoint"]["sensitive"] = True
    assert load_terraform_outputs(_write(tmp_path, document)) == load_terraform_outputs(EXAMPLE)
