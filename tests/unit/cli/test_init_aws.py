"""``deployops init``: all-local by default; ``--platform aws`` wires production to the
Terraform outputs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from deployops.config.project import load_project
from deployops.drivers.aws import resources_for

REPO = Path(__file__).resolve().parents[3]
DEPLOYOPS = str(Path(sys.executable).parent / "deployops")


def _run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DEPLOYOPS, *args], cwd=folder, capture_output=True, text=True, timeout=60, check=False
    )


def test_default_init_is_all_local(tmp_path: Path) -> None:
    assert _run(tmp_path, "init").returncode == 0
    cfg = load_project(tmp_path / "deployops.yaml")
    assert {e.platform for e in cfg.environments.values()} == {"local"}


def test_init_for_aws_reads_region_cluster_and_mode_from_the_outputs(tmp_path: Path) -> None:
    (tmp_path / "infrastructure").mkdir()
    shutil.copy(
        REPO / "examples" / "terraform-output.json", tmp_path / "infrastructure/tf-outputs.json"
    )
    done = _run(tmp_path, "init", "--platform", "aws", "-o", "json")
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    assert (facts["platform"], facts["cluster"], facts["mode"]) == (
        "aws",
        "deployops-production",
        "services",
    )
    cfg = load_project(tmp_path / "deployops.yaml")
    production = cfg.environment("production")
    assert production.platform == "aws"
    assert production.aws.terraform_outputs == "infrastructure/tf-outputs.json"
    assert cfg.environment("development").platform == "local"
    assert resources_for(cfg, "production").cluster == "deployops-production"
    assert _run(tmp_path, "config", "validate", "-e", "production").returncode == 0


def test_init_for_aws_before_terraform_apply_says_what_to_run(tmp_path: Path) -> None:
    done = _run(tmp_path, "init", "--platform", "aws")
    assert done.returncode == 0, done.stderr
    assert "terraform -chdir=infrastructure apply" in done.stdout
    assert load_project(tmp_path / "deployops.yaml").environment("production").platform == "aws"
