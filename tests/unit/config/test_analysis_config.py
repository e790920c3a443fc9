"""The ``rollback.analysis:`` section becomes the judge's policy in one place (issue 19)."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from deployops.config.rollback import AnalysisSettings, RollbackSettings, rollback_issues
from deployops.domain.judge import Direction, JudgeMetric, JudgePolicy


def _settings(text: str) -> RollbackSettings:
    return RollbackSettings.model_validate(yaml.safe_load(text) or {})


def test_defaults_are_the_judges_defaults_and_the_spec_numbers() -> None:
    s = RollbackSettings()
    assert s.analysis.judge_policy() == JudgePolicy()
    assert s.analysis.on_marginal == "hold"
    assert s.analysis.decision_timeout == 1800.0
    assert s.measurements_retention == 90 * 86400.0
    assert JudgePolicy().confidence == 0.98


def test_units_are_converted_and_0_removes_a_floor() -> None:
    s = _settings(
        """
analysis:
  confidence: 0.99
  pass_score: 90
  marginal_score: 60
  on_marginal: continue
  decision_timeout: 10m
  metrics:
    error_rate: {min_effect_absolute: 0.5, min_effect_percent: 50}
    latency: {min_effect_absolute: 20, min_effect_percent: 0, direction: either}
    latency_spread: {enabled: false}
measurements_retention: 30d
"""
    )
    policy = s.analysis.judge_policy()
    assert policy.confidence == 0.99
    assert (policy.pass_score, policy.marginal_score) == (90.0, 60.0)
    by = {m.metric: m for m in policy.metrics}
    assert set(by) == {JudgeMetric.ERROR_RATE, JudgeMetric.LATENCY}
    err, lat = by[JudgeMetric.ERROR_RATE], by[JudgeMetric.LATENCY]
    assert (err.min_effect_absolute, err.min_effect_relative) == (0.5, 0.5)
    assert err.critical  # unset keys keep the default
    assert lat.min_effect_absolute == pytest.approx(0.020)  # ms in the file, s in the judge
    assert lat.min_effect_relative is None
    assert lat.direction is Direction.EITHER
    assert s.analysis.decision_timeout == 600.0
    assert s.measurements_retention == 30 * 86400.0


def test_a_service_section_merges_key_by_key_onto_the_top_level() -> None:
    top = _settings(
        "analysis: {confidence: 0.95, metrics: {latency: {weight: 5, min_samples: 80}}}"
    )
    svc = _settings("analysis: {on_marginal: continue, metrics: {latency: {weight: 3}}}")
    merged = top.merged(svc).analysis
    assert merged.confidence == 0.95
    assert merged.on_marginal == "continue"
    lat = next(m for m in merged.judge_policy().metrics if m.metric is JudgeMetric.LATENCY)
    assert (lat.weight, lat.min_samples) == (3.0, 80)


def test_problems_are_named_by_their_path() -> None:
    s = _settings(
        "analysis: {pass_score: 70, marginal_score: 80, decision_timeout: 0}\n"
        "measurements_retention: 1h\n"
    )
    issues = dict(rollback_issues(s, "rollback"))
    assert "must not be above pass_score (70)" in issues["rollback.analysis.marginal_score"]
    assert "rollback.analysis.decision_timeout" in issues
    assert "at least 1d" in issues["rollback.measurements_retention"]
    with pytest.raises(ValidationError, match="metrics"):
        AnalysisSettings.model_validate({"metrics": {"throughput": {}}})
    with pytest.raises(ValidationError, match="confidence"):
        AnalysisSettings.model_validate({"confidence": 1.0})
    assert rollback_issues(RollbackSettings(), "rollback") == []


def test_the_section_survives_being_frozen_into_a_plan_and_read_back() -> None:
    """A plan keeps ``model_dump(mode="json")`` of the settings: every key is written, so
    defaults must read back as "keep the metric's default", not as values of their own."""
    import json

    s = _settings("analysis: {on_marginal: continue, metrics: {latency: {min_effect_percent: 20}}}")
    back = RollbackSettings.model_validate(json.loads(json.dumps(s.model_dump(mode="json"))))
    assert back.analysis.judge_policy() == s.analysis.judge_policy()
    lat = next(m for m in back.analysis.judge_policy().metrics if m.metric is JudgeMetric.LATENCY)
    assert (lat.weight, lat.min_effect_relative) == (2.0, 0.2)  # the default weight kept
    assert back.analysis.on_marginal == "continue"
