"""One source of truth: the guide's numbers in ``infrastructure/defaults.json`` (which the
Terraform is held to) equal deployops' own defaults — rollout percentages (IAC-4), the scaling
policy (IAC-3, IAC-5) and the alarm table (MON-1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployops.config.project import HealthCheckConfig, RollingSettings
from deployops.domain.alarms import DEFAULT_ALARMS
from deployops.domain.rules import Comparison
from deployops.domain.scaling import DEFAULT_SCALING_POLICY

DEFAULTS = json.loads(
    (Path(__file__).resolve().parents[2] / "infrastructure" / "defaults.json").read_text()
)
COMPARISONS = {
    "GreaterThanThreshold": Comparison.GT,
    "GreaterThanOrEqualToThreshold": Comparison.GE,
    "LessThanThreshold": Comparison.LT,
    "LessThanOrEqualToThreshold": Comparison.LE,
}


def test_rolling_percentages_and_health_path_match_iac4() -> None:
    rollout = DEFAULTS["rollout"]
    rolling = RollingSettings()
    assert rolling.maximum_percent == rollout["maximum_percent"] == 200
    assert rolling.minimum_healthy_percent == rollout["minimum_healthy_percent"] == 100
    assert HealthCheckConfig().path == rollout["health_check_path"] == "/health"


def test_scaling_policy_matches_iac3_iac5() -> None:
    s = DEFAULTS["scaling"]
    p = DEFAULT_SCALING_POLICY
    assert (p.min_capacity, p.max_capacity) == (s["min_capacity"], s["max_capacity"]) == (2, 10)
    assert p.target == s["cpu_target"] == 70
    assert p.scale_out_cooldown_s == s["scale_out_cooldown"] == 300
    assert p.scale_in_cooldown_s == s["scale_in_cooldown"] == 300
    assert p.period_s == s["metric_resolution_seconds"] == 60


@pytest.mark.parametrize("name", sorted(DEFAULTS["alarms"]))
def test_alarm_table_matches_mon1(name: str) -> None:
    tf = DEFAULTS["alarms"][name]
    (alarm,) = [a for a in DEFAULT_ALARMS if a.rule.name == name]
    assert alarm.rule.threshold == tf["threshold"]
    assert alarm.rule.evaluation_periods == tf["evaluation_periods"]
    assert alarm.rule.period_s == tf["period_seconds"]
    assert alarm.rule.comparison is COMPARISONS[tf["comparison"]]
    assert alarm.rule.statistic.value == tf["statistic"]
    assert alarm.action.value == tf["action"]
    assert alarm.severity.value == tf["severity"]


def test_the_same_five_alarms_on_both_sides_mon1() -> None:
    assert {a.rule.name for a in DEFAULT_ALARMS} == set(DEFAULTS["alarms"])
