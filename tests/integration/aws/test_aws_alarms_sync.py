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
    return _write(tmp_path, world.outputs_document, alarms)


def _write(tmp_path: Path, outputs: dict[str, Any], alarms: dict[str, Any]) -> Path:
    (tmp_path / "tf-outputs.json").write_text(json.dumps(outputs), encoding="utf-8")
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
    actions, one set per colour as infrastructure/modules/monitoring renders them (CPU and
    memory per ECS service, 5XX per target group, LowHealthyHosts over both groups); the
    second finds them equal and puts nothing."""
    config = _project(tmp_path, aws)
    first = _sync(config)
    actions = {a["name"]: a["action"] for a in first["alarms"]}
    assert actions == {
        "shop-staging-blue-HighCPUUtilization": "create",
        "shop-staging-green-HighCPUUtilization": "create",
        "shop-staging-blue-HighErrorRate": "create",
        "shop-staging-green-HighErrorRate": "create",
        "shop-staging-LowHealthyHosts": "create",
        "shop-staging-blue-HighMemoryUsage": "create",
        "shop-staging-green-HighMemoryUsage": "create",
        "shop-staging-DatabaseConnections": "skipped",
    }
    cw = boto3.client("cloudwatch", region_name=REGION)
    alarms = {a["AlarmName"]: a for a in cw.describe_alarms()["MetricAlarms"]}
    error = alarms["shop-staging-green-HighErrorRate"]
    assert (error["MetricName"], error["Threshold"], error["TreatMissingData"]) == (
        "HTTPCode_Target_5XX_Count",
        10.0,
        "notBreaching",
    )
    tg = {d["Name"]: d["Value"] for d in error["Dimensions"]}["TargetGroup"]
    assert tg.startswith("targetgroup/shop-staging-green/")
    assert [a.rsplit(":", 1)[-1] for a in error["AlarmActions"]] == ["shop-staging-alerts"]
    hosts = alarms["shop-staging-LowHealthyHosts"]
    assert sorted(a.rsplit(":", 1)[-1] for a in hosts["AlarmActions"]) == [
        "shop-staging-alerts",
        "shop-staging-critical-alerts",
    ]
    assert hosts["Metrics"][-1]["Expression"] == "FILL(blue, 0) + FILL(green, 0)"
    cpu = alarms["shop-staging-blue-HighCPUUtilization"]
    assert (cpu["EvaluationPeriods"], cpu["DatapointsToAlarm"]) == (2, 2)
    assert {d["Value"] for d in cpu["Dimensions"]} == {"shop-staging", "shop-staging-blue"}

    second = _sync(config)
    assert {a["action"] for a in second["alarms"]} == {"unchanged", "skipped"}


def test_names_and_scale_out_actions_agree_with_the_terraform_outputs(
    aws: MotoServer, tmp_path: Path
) -> None:
    """The names come from Terraform's ``alarm_names`` output (its per-colour map), and a
    scale-out alarm of one colour scales out that colour's own service through the step
    policy infrastructure/modules/ecs gives it, as the module's alarms do."""
    session = session_for(aws)
    world = provision(session)
    outputs = dict(world.outputs_document)
    named = {
        alarm: {c: f"tf-{c}-{alarm}" for c in ("blue", "green")}
        for alarm in ("HighCPUUtilization", "HighErrorRate", "HighMemoryUsage")
    }
    outputs["alarm_names"] = {
        "sensitive": False,
        "type": "object",
        "value": {
            **named,
            "LowHealthyHosts": "tf-LowHealthyHosts",
            "DatabaseConnections": "tf-DatabaseConnections",
        },
    }
    ecs = session.client("ecs")
    td = ecs.register_task_definition(
        family="shop-staging",
        containerDefinitions=[{"name": "app", "image": "repo/web:1.0.0", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster="shop-staging", serviceName="shop-staging-green", taskDefinition=td, desiredCount=2
    )
    scaling = session.client("application-autoscaling")
    resource = "service/shop-staging/shop-staging-green"
    scaling.register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=resource,
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=2,
        MaxCapacity=10,
    )
    policy = scaling.put_scaling_policy(
        PolicyName="shop-staging-green-alarm-scale-out",
        ServiceNamespace="ecs",
        ResourceId=resource,
        ScalableDimension="ecs:service:DesiredCount",
        PolicyType="StepScaling",
        StepScalingPolicyConfiguration={
            "AdjustmentType": "ChangeInCapacity",
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
        },
    )["PolicyARN"]
    config = _write(tmp_path, outputs, {})
    names = {a["name"] for a in _sync(config)["alarms"]}
    assert names == {
        *(n for by_colour in named.values() for n in by_colour.values()),
        "tf-LowHealthyHosts",
        "tf-DatabaseConnections",
    }
    cw = boto3.client("cloudwatch", region_name=REGION)
    alarms = {a["AlarmName"]: a for a in cw.describe_alarms()["MetricAlarms"]}
    assert policy in alarms["tf-green-HighCPUUtilization"]["AlarmActions"]
    assert policy not in alarms["tf-blue-HighCPUUtilization"]["AlarmActions"]
    assert policy not in alarms["tf-green-HighErrorRate"]["AlarmActions"]  # notify only
    assert {a["action"] for a in _sync(config)["alarms"]} == {"unchanged", "skipped"}


def test_dry_run_prints_the_diff_and_changes_nothing(aws: MotoServer, tmp_path: Path) -> None:
    config = _project(tmp_path, aws)
    _sync(config)
    config = _project_with_threshold(config, 25)
    planned = _sync(config, "--dry-run")
    changed, other = [a for a in planned["alarms"] if a["action"] == "update"]
    assert other["name"] == "shop-staging-green-HighErrorRate"
    assert changed["name"] == "shop-staging-blue-HighErrorRate"
    assert {"field": "Threshold", "was": "10.0", "becomes": "25.0"} in changed["changes"]
    cw = boto3.client("cloudwatch", region_name=REGION)
    (alarm,) = cw.describe_alarms(AlarmNames=[changed["name"]])["MetricAlarms"]
    assert alarm["Threshold"] == 10.0  # dry run: untouched
    applied = _sync(config)
    assert [a["name"] for a in applied["alarms"] if a["action"] == "update"] == [
        changed["name"],
        other["name"],
    ]
    assert {a["action"] for a in _sync(config)["alarms"]} == {"unchanged", "skipped"}


def _project_with_threshold(config: Path, threshold: int) -> Path:
    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    doc["alarms"] = {"HighErrorRate": {"threshold": threshold}}
    config.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return config
