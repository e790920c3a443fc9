"""Global options work where people type them: before or after the command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deployops.cli.main import hoist_global_options

DEPLOYOPS = str(Path(sys.executable).parent / "deployops")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["deployments", "list", "-o", "json"], ["-o", "json", "deployments", "list"]),
        (
            ["deploy", "--version", "1.0.0", "-e", "staging"],
            ["-e", "staging", "deploy", "--version", "1.0.0"],
        ),
        (
            ["-c", "a.yaml", "lock", "list", "--output=json"],
            ["-c", "a.yaml", "--output=json", "lock", "list"],
        ),
        (["config", "diff", "staging", "production"], ["config", "diff", "staging", "production"]),
        (["deploy", "--", "-o"], ["deploy", "--", "-o"]),
    ],
)
def test_hoisting(argv: list[str], expected: list[str]) -> None:
    assert hoist_global_options(argv) == expected


def test_deployments_list_output_json_after_the_command(tmp_path: Path) -> None:
    init = subprocess.run(
        [DEPLOYOPS, "init"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert init.returncode == 0, init.stderr
    out = subprocess.run(
        [DEPLOYOPS, "deployments", "list", "-o", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


def test_a_project_without_application_settings_validates(tmp_path: Path) -> None:
    """CFG is optional: deployops.yaml alone is valid, exit 0 with a summary."""
    subprocess.run([DEPLOYOPS, "init"], cwd=tmp_path, check=True, capture_output=True)
    out = subprocess.run(
        [DEPLOYOPS, "config", "validate", "-e", "development"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "no application settings" in out.stdout


def test_an_aws_environment_before_terraform_apply_is_a_clear_error(tmp_path: Path) -> None:
    """A project written for aws: without the Terraform outputs file the error
    says how to write it (exit 2, nothing changed)."""
    subprocess.run(
        [DEPLOYOPS, "init", "--platform", "aws"], cwd=tmp_path, check=True, capture_output=True
    )
    out = subprocess.run(
        [DEPLOYOPS, "deploy", "-e", "production", "--version", "1.0.0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2
    assert "cannot read the Terraform outputs file" in out.stderr
    assert "terraform -chdir=infrastructure output -json > tf-outputs.json" in out.stderr
    assert "Traceback" not in out.stderr
