"""``deployops alarms sync`` against moto's server, through the installed CLI.

Real account only: CloudWatch evaluating the alarms and publishing to the (KMS-encrypted) SNS
topics; moto stores alarms but never changes their state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from tests.integration.aws.moto_rig import REGION, MotoServer, provision, session_for

pytestmark = pytest.mark.integration

DEPLOYOPS = str(Path(sys.executable).parent / "deployops")


def _project(tmp_path: Path, aws: MotoServer, **alarms: Any) -> Path:
    world = provision(session_for(aws))
    world.write_outputs(tmp_path / "tf-outputs.json")
    doc = {
        "project": "shop",
        "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
        "environments": {
            "staging": {"platform": "aws", "aws": {"terraform_outputs": "tf-outputs.json"}}
        },
        "services": {"web": {"port": 80, "image": "repo/web:{version}"}},
        "alarms": alarms,
    }
    path = tmp_path / "deployops.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def _sync(config: Path, *extra: str) -> dict[str, Any]:
    done = subprocess.run(
        [DEPLOYOPS, "alarms", "sync", "-c", str(config), "-e", "staging", "-o", "json", *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_sync_twice_changes_nothing_the_second_time(aws: MotoServer, tmp_path: Path) -> None:
    """MON-1: the first run creates the alarms with period, M of N, missing data and SNS
    actions; the second finds them equal and puts nothing."""
    config = _project(tmp_path, aws)
    first = _sync(config)
    actions = {a["name"]: a["action"] for a in first["alarms"]}
    assert actions == {
        "shop-staging-web-HighCPUUtilization": "create",
        "shop-staging-web-HighErrorRate": "create",
        "shop-staging-web-LowHealthyHosts": "create",
        "shop-staging-web-HighMemoryUsage": "create",
        "shop-staging-web-DatabaseConnections": "skipped",
    }
    cw = boto3.client("cloudwatch", region_name=REGION)
    alarms = {a["AlarmName"]: a for a in cw.describe_alarms()["MetricAlarms"]}
    error = alarms["shop-staging-web-HighErrorRate"]
    assert (error["MetricName"], error["Threshold"], error["TreatMissingData"]) == (
        "HTTPCode_Target_5XX_Count",
        10.0,
        "notBreaching",
    )
    assert error["AlarmActions"][0].endswith(":shop-staging-alerts")
    hosts = alarms["shop-staging-web-LowHealthyHosts"]
    assert hosts["AlarmActions"][0].endswith(":shop-staging-critical-alerts")
    cpu = alarms["shop-staging-web-HighCPUUtilization"]
    assert (cpu["EvaluationPeriods"], cpu["DatapointsToAlarm"]) == (2, 2)

    second = _sync(config)
    assert {a["action"] for a in second["alarms"]} == {"unchanged", "skipped"}


def test_dry_run_prints_the_diff_and_changes_nothing(aws: MotoServer, tmp_path: Path) -> None:
    config = _project(tmp_path, aws)
    _sync(config)
    config = _project_with_threshold(config, 25)
    planned = _sync(config, "--dry-run")
    (changed,) = [a for a in planned["alarms"] if a["action"] == "update"]
    assert changed["name"] == "shop-staging-web-HighErrorRate"
    assert {"field": "Threshold", "was": "10.0", "becomes": "25.0"} in changed["changes"]
    cw = boto3.client("cloudwatch", region_name=REGION)
    (alarm,) = cw.describe_alarms(AlarmNames=[changed["name"]])["MetricAlarms"]
    assert alarm["Threshold"] == 10.0  # dry run: untouched
    applied = _sync(config)
    assert [a["name"] for a in applied["alarms"] if a["action"] == "update"] == [changed["name"]]
    assert _sync(config)["alarms"][1]["action"] == "unchanged"


def _project_with_threshold(config: Path, threshold: int) -> Path:
    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    doc["alarms"] = {"HighErrorRate": {"threshold": threshold}}
    config.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return config
