"""``alarms sync`` renders the set of alarms infrastructure/modules/monitoring renders (MON-1):
the same names, per colour where the module goes per colour. Pure rendering, no AWS."""

from __future__ import annotations

import json
import re
from pathlib import Path

from deployops.domain.alarms import DEFAULT_ALARMS
from deployops.drivers.aws.cloudwatch import AlarmChange, AlarmTargets, render_alarms

ROOT = Path(__file__).resolve().parents[3]
ELB = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012"
TARGETS = AlarmTargets(
    prefix="deployops-production",
    cluster="deployops-production",
    load_balancer_arn=f"{ELB}:loadbalancer/app/deployops-production/50dc6c495c0c9188",
    target_groups={
        "blue": f"{ELB}:targetgroup/deployops-production-blue/0123456789abcdef",
        "green": f"{ELB}:targetgroup/deployops-production-green/fedcba9876543210",
    },
    ecs_services={"blue": "deployops-production-blue", "green": "deployops-production-green"},
    warning_topic_arn="arn:aws:sns:ap-northeast-1:123456789012:deployops-production-alerts",
    critical_topic_arn="arn:aws:sns:ap-northeast-1:123456789012:deployops-production-critical",
    scale_out_policies={"green": "arn:aws:autoscaling:green-scale-out"},
)


def _names(targets: AlarmTargets) -> set[str]:
    return {
        r.name if isinstance(r, AlarmChange) else str(r["AlarmName"])
        for r in render_alarms(DEFAULT_ALARMS, targets)
    }


def _module_names(name: str, keys: dict[str, list[str]]) -> set[str]:
    """Every alarm_name of the monitoring module, its for_each keys filled in."""
    text = (ROOT / "infrastructure/modules/monitoring/main.tf").read_text(encoding="utf-8")
    out: set[str] = set()
    for block in re.findall(
        r'resource "aws_cloudwatch_metric_alarm" "\w+" \{(.*?)\n\}', text, re.S
    ):
        template = re.search(r'alarm_name\s*=\s*"([^"]+)"', block)
        assert template is not None
        each = re.search(r"for_each\s*=\s*(?:tomap\()?var\.(\w+)", block)
        filled = template.group(1).replace("${var.name}", name)
        if each is None:
            out.add(filled)
        else:
            out |= {filled.replace("${each.key}", k) for k in keys[each.group(1)]}
    return out


def test_the_names_are_the_modules_per_colour_names() -> None:
    """CPU and memory per ECS service, 5XX per target group, LowHealthyHosts and
    DatabaseConnections once: the module's alarm_name templates, filled in."""
    keys = {"services": ["blue", "green"], "target_group_arn_suffixes": ["blue", "green"]}
    assert _names(TARGETS) == _module_names("deployops-production", keys)


def test_the_names_of_the_terraform_outputs_win() -> None:
    document = json.loads((ROOT / "examples/terraform-output.json").read_text(encoding="utf-8"))
    published = document["alarm_names"]["value"]
    names = {n for v in published.values() for n in (v.values() if isinstance(v, dict) else [v])}
    renamed = AlarmTargets(**{**_fields(TARGETS), "names": published, "prefix": "other"})
    assert _names(renamed) == names


def test_a_scale_out_alarm_scales_out_its_own_colour_and_critical_pages() -> None:
    by_name = {
        str(r["AlarmName"]): r
        for r in render_alarms(DEFAULT_ALARMS, TARGETS)
        if isinstance(r, dict)
    }
    policy = "arn:aws:autoscaling:green-scale-out"
    assert policy in by_name["deployops-production-green-HighCPUUtilization"]["AlarmActions"]
    assert policy not in by_name["deployops-production-blue-HighCPUUtilization"]["AlarmActions"]
    assert policy not in by_name["deployops-production-green-HighCPUUtilization"]["OKActions"]
    hosts = by_name["deployops-production-LowHealthyHosts"]
    assert hosts["AlarmActions"] == [TARGETS.warning_topic_arn, TARGETS.critical_topic_arn]
    assert [m["Id"] for m in hosts["Metrics"]] == ["blue", "green", "healthy"]


def test_ecs_native_watches_its_one_service_and_both_groups() -> None:
    native = AlarmTargets(
        **{**_fields(TARGETS), "ecs_services": {"native": "deployops-production"}}
    )
    names = _names(native)
    assert "deployops-production-native-HighCPUUtilization" in names
    assert {
        "deployops-production-blue-HighErrorRate",
        "deployops-production-green-HighErrorRate",
    } <= names


def _fields(t: AlarmTargets) -> dict[str, object]:
    return {f: getattr(t, f) for f in t.__dataclass_fields__}
