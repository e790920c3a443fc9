"""The guide's entry points (DEP-5) and their required parameters (DEP-6)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = ROOT / "scripts"


def run(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DEPLOYOPS", "AWS_"))}
    base.pop("VERSION", None)
    base["DEPLOYOPS"] = str(Path(sys.executable).parent / "deployops")
    return subprocess.run(
        ["bash", str(SCRIPTS / script)],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    doc = {
        "project": "shop",
        "environments": {"staging": {"platform": "local"}, "production": {"platform": "local"}},
        "services": {"web": {"port": 18480, "command": ["python3", "app.py"]}},
    }
    path = tmp_path / "deployops.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(
    "script",
    [
        "deploy-production.sh",
        "deploy-staging.sh",
        "rollback.sh",
        "health-check.sh",
        "restore-db.sh",
        "dns-failover.sh",
    ],
)
def test_every_script_is_strict_bash_dep5(script: str) -> None:
    text = (SCRIPTS / script).read_text()
    assert text.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text
    assert os.access(SCRIPTS / script, os.X_OK)


@pytest.mark.parametrize("script", ["deploy-production.sh", "deploy-staging.sh"])
def test_missing_parameters_are_named_and_exit_2_dep6(script: str, project: Path) -> None:
    out = run(script, {"VERSION": "1.4.0", "DEPLOYOPS_CONFIG": str(project)}, project.parent)
    assert out.returncode == 2
    assert "CLUSTER SERVICE TASK_DEFINITION" in out.stderr


def test_invalid_version_is_refused_before_anything_runs_dep6(project: Path) -> None:
    env = {
        "VERSION": "1.4",
        "CLUSTER": "shop",
        "SERVICE": "web",
        "TASK_DEFINITION": "web",
        "DEPLOYOPS_CONFIG": str(project),
    }
    out = run("deploy-staging.sh", env, project.parent)
    assert out.returncode == 2, out.stderr
    assert "not a semantic version" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("CLUSTER", "other-cluster", "is not staging's cluster"),
        ("TASK_DEFINITION", "api", "is not the task family of web"),
        ("SERVICE", "wbe", "unknown service 'wbe'"),
    ],
)
def test_wrong_cluster_family_or_service_exit_2_dep6(
    project: Path, var: str, value: str, message: str
) -> None:
    env = {
        "VERSION": "1.4.0",
        "CLUSTER": "shop",
        "SERVICE": "web",
        "TASK_DEFINITION": "web",
        "DEPLOYOPS_CONFIG": str(project),
        var: value,
    }
    out = run("deploy-staging.sh", env, project.parent)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr


def test_rollback_script_needs_a_deployment_id_rb3(project: Path) -> None:
    out = run("rollback.sh", {"DEPLOYOPS_CONFIG": str(project)}, project.parent)
    assert out.returncode == 2
    assert "DEPLOYMENT_ID" in out.stderr


def test_rollback_script_takes_the_guides_positional_arguments_rb3(project: Path) -> None:
    out = run("rollback.sh", {"DEPLOYOPS_CONFIG": str(project)}, project.parent)
    assert out.returncode == 2
    assert "<deployment-id> [--dry-run]" in out.stderr
    given = run(
        "rollback.sh",
        {"DEPLOYOPS_CONFIG": str(project), "ENVIRONMENT": "staging"},
        project.parent,
    )
    assert given.returncode == 2
    # positional: the id reaches deployops (which names it), no complaint about a variable
    dry = subprocess.run(
        ["bash", str(SCRIPTS / "rollback.sh"), "dep-20990101-000000-abcd", "--dry-run"],
        env={
            **os.environ,
            "DEPLOYOPS_CONFIG": str(project),
            "ENVIRONMENT": "staging",
            "DEPLOYOPS": str(Path(sys.executable).parent / "deployops"),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=project.parent,
    )
    assert "dep-20990101-000000-abcd" in dry.stderr
    assert "missing the deployment id" not in dry.stderr
    bad = subprocess.run(
        ["bash", str(SCRIPTS / "rollback.sh"), "--bogus"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "unknown option --bogus" in bad.stderr


@pytest.mark.parametrize("script", ["restore-db.sh"])
def test_dr_scripts_are_strict_bash_and_refuse_unknown_options_dr6(script: str) -> None:
    text = (SCRIPTS / script).read_text()
    assert text.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text
    assert os.access(SCRIPTS / script, os.X_OK)
    bad = subprocess.run(
        ["bash", str(SCRIPTS / script), "--bogus"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "fix:" in bad.stderr


def test_restore_db_script_passes_a_snapshot_and_a_dry_run_dr6(project: Path) -> None:
    out = subprocess.run(
        ["bash", str(SCRIPTS / "restore-db.sh"), "20260101-000000F", "--dry-run"],
        env={
            **os.environ,
            "DEPLOYOPS_CONFIG": str(project),
            "DEPLOYOPS": str(Path(sys.executable).parent / "deployops"),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=project.parent,
    )
    assert out.returncode == 0, out.stderr
    assert "RestoreDatabase" in out.stdout
    assert "RepointApplication" in out.stdout


def test_deploy_production_disaster_recovery_mode_refuses_unknown_modes_dr6(
    project: Path,
) -> None:
    out = run("deploy-production.sh", {"DEPLOYOPS_CONFIG": str(project)}, project.parent)
    assert out.returncode == 2  # no mode: the guide's variables are required
    bad = subprocess.run(
        ["bash", str(SCRIPTS / "deploy-production.sh"), "sideways"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "disaster-recovery" in bad.stderr
