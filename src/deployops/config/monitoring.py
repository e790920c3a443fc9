"""The ``alarms:`` and ``autoscaling:`` sections of ``deployops.yaml`` (MON-1, IAC-5).

With neither section the guide's numbers apply: the five MON-1 alarms and target tracking on
CPU at 70 % between 2 and 10 tasks with a 300 s cooldown. An entry under ``alarms:`` named like
a default alarm changes only the keys it sets; ``enabled: false`` switches an alarm off; any
other name defines a new alarm (then ``metric``, ``comparison`` and ``threshold`` are required)::

    alarms:
      HighCPUUtilization: {action: notify}      # let target tracking own scale-out on CPU
      HighErrorRate: {threshold: 20}
      SlowResponses:
        metric: TargetResponseTime
        statistic: p99
        comparison: ">"
        threshold: 1000
        evaluation_periods: 3
        datapoints_to_alarm: 2
    autoscaling:
      target: 70
      min_capacity: 2
      max_capacity: 10
      scale_out_cooldown: 300s
      scale_in_cooldown: 300s
"""

from __future__ import annotations

import difflib
from dataclasses import replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from deployops.config.durations import Duration
from deployops.domain.alarms import (
    DEFAULT_ALARMS,
    AlarmAction,
    AlarmDefinition,
    Severity,
    check_scaling_conflicts,
    validate_alarms,
)
from deployops.domain.model import MetricName, Statistic
from deployops.domain.rules import Comparison, MissingData, Rule
from deployops.domain.scaling import ScalingPolicy, validate

__all__ = [
    "AlarmConfig",
    "AutoscalingConfig",
    "alarm_definitions",
    "monitoring_issues",
    "monitoring_warnings",
    "scaling_policy",
]

_METRICS = [m.value for m in MetricName]
_STATISTICS = [s.value for s in Statistic]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlarmConfig(_Model):
    """One alarm. Unset keys of a default alarm keep the guide's value."""

    enabled: bool = True
    metric: str | None = None
    statistic: str | None = None
    comparison: Literal[">", ">=", "<", "<="] | None = None
    threshold: float | None = None
    period: Duration | None = None
    evaluation_periods: int | None = Field(default=None, ge=1, le=100)
    datapoints_to_alarm: int | None = Field(default=None, ge=1, le=100)
    missing_data: Literal["missing", "ignore", "breaching", "notBreaching"] | None = None
    action: Literal["scale_out", "notify"] | None = None
    severity: Literal["warning", "critical"] | None = None
    description: str | None = None


class AutoscalingConfig(_Model):
    """Target tracking (IAC-5); the defaults are the guide's."""

    enabled: bool = True
    metric: str = MetricName.CPU.value
    target: float = 70.0
    min_capacity: int = 2
    max_capacity: int = 10
    period: Duration = 60.0
    scale_out_cooldown: Duration = 300.0
    scale_in_cooldown: Duration = 300.0
    tolerance: float = 0.10
    scale_in_max_step: int = 2
    # Tasks an alarm whose action is scale_out adds at once (step scaling on top of tracking).
    alarm_scale_out_step: int = Field(default=1, ge=1, le=100)


def _did_you_mean(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _metric_issue(value: str, path: str) -> tuple[str, str] | None:
    if value in _METRICS:
        return None
    return (
        path,
        f"unknown metric {value!r}{_did_you_mean(value, _METRICS)}; "
        f"known metrics: {', '.join(_METRICS)}",
    )


def _structure_issues(alarms: dict[str, AlarmConfig]) -> list[tuple[str, str]]:
    defaults = {a.name for a in DEFAULT_ALARMS}
    issues: list[tuple[str, str]] = []
    for name, cfg in alarms.items():
        where = f"alarms.{name}"
        if cfg.metric is not None:
            found = _metric_issue(cfg.metric, f"{where}.metric")
            if found:
                issues.append(found)
        if cfg.statistic is not None and cfg.statistic not in _STATISTICS:
            issues.append(
                (
                    f"{where}.statistic",
                    f"unknown statistic {cfg.statistic!r}"
                    f"{_did_you_mean(cfg.statistic, _STATISTICS)}; use one of "
                    f"{', '.join(_STATISTICS)}",
                )
            )
        if name not in defaults and cfg.enabled:
            hint = _did_you_mean(name, sorted(defaults))
            for key in ("metric", "comparison", "threshold"):
                if getattr(cfg, key) is None:
                    issues.append(
                        (
                            f"{where}.{key}",
                            f"required for a new alarm {name!r}{hint}; the default alarms are "
                            f"{', '.join(sorted(defaults))}",
                        )
                    )
    return issues


def alarm_definitions(alarms: dict[str, AlarmConfig]) -> tuple[AlarmDefinition, ...]:
    """The effective alarms: the defaults, changed and extended by ``alarms:``.

    Call after :func:`monitoring_issues` found nothing (unknown names raise ``ValueError``).
    """
    out: list[AlarmDefinition] = []
    for default in DEFAULT_ALARMS:
        cfg = alarms.get(default.name)
        if cfg is None:
            out.append(default)
        elif cfg.enabled:
            out.append(_apply(default, cfg))
    for name, cfg in alarms.items():
        if any(a.name == name for a in DEFAULT_ALARMS) or not cfg.enabled:
            continue
        assert cfg.metric is not None
        assert cfg.comparison is not None
        assert cfg.threshold is not None
        base = AlarmDefinition(
            rule=Rule(
                name=name,
                metric=MetricName(cfg.metric),
                statistic=Statistic.AVERAGE,
                comparison=Comparison(cfg.comparison),
                threshold=cfg.threshold,
            ),
            action=AlarmAction.NOTIFY,
        )
        out.append(_apply(base, cfg))
    return tuple(out)


def _apply(base: AlarmDefinition, cfg: AlarmConfig) -> AlarmDefinition:
    rule = base.rule
    rule = replace(
        rule,
        metric=MetricName(cfg.metric) if cfg.metric else rule.metric,
        statistic=Statistic(cfg.statistic) if cfg.statistic else rule.statistic,
        comparison=Comparison(cfg.comparison) if cfg.comparison else rule.comparison,
        threshold=cfg.threshold if cfg.threshold is not None else rule.threshold,
        period_s=int(cfg.period) if cfg.period is not None else rule.period_s,
        evaluation_periods=cfg.evaluation_periods or rule.evaluation_periods,
        datapoints_to_alarm=(
            cfg.datapoints_to_alarm
            if cfg.datapoints_to_alarm is not None
            else (rule.datapoints_to_alarm if cfg.evaluation_periods is None else None)
        ),
        missing_data=MissingData(cfg.missing_data) if cfg.missing_data else rule.missing_data,
    )
    return AlarmDefinition(
        rule=rule,
        action=AlarmAction(cfg.action) if cfg.action else base.action,
        severity=Severity(cfg.severity) if cfg.severity else base.severity,
        description=cfg.description if cfg.description is not None else base.description,
    )


def scaling_policy(cfg: AutoscalingConfig) -> ScalingPolicy:
    """The domain policy. Call after :func:`monitoring_issues` found nothing."""
    return ScalingPolicy(
        metric=MetricName(cfg.metric),
        target=cfg.target,
        min_capacity=cfg.min_capacity,
        max_capacity=cfg.max_capacity,
        period_s=max(1, int(cfg.period)),
        scale_out_cooldown_s=cfg.scale_out_cooldown,
        scale_in_cooldown_s=cfg.scale_in_cooldown,
        tolerance=cfg.tolerance,
        scale_in_max_step=cfg.scale_in_max_step,
    )


def monitoring_issues(
    alarms: dict[str, AlarmConfig], autoscaling: AutoscalingConfig
) -> list[tuple[str, str]]:
    """Every problem of both sections as ``(path, message)`` (the cross-field pass)."""
    issues = _structure_issues(alarms)
    if not issues:
        issues.extend(validate_alarms(alarm_definitions(alarms), "alarms"))
    metric_issue = _metric_issue(autoscaling.metric, "autoscaling.metric")
    if metric_issue:
        issues.append(metric_issue)
    else:
        found = validate(scaling_policy(autoscaling), "autoscaling")
        # The domain names its fields after the policy; the file uses the config's key names.
        rename = {
            "autoscaling.period_s": "autoscaling.period",
            "autoscaling.scale_out_cooldown_s": "autoscaling.scale_out_cooldown",
            "autoscaling.scale_in_cooldown_s": "autoscaling.scale_in_cooldown",
        }
        issues.extend((rename.get(p, p), m) for p, m in found)
    return issues


def monitoring_warnings(
    alarms: dict[str, AlarmConfig], autoscaling: AutoscalingConfig
) -> list[tuple[str, str]]:
    """Settings that work but fight each other: an alarm scaling out on the metric target
    tracking holds.

    The built-in pair (MON-1's HighCPUUtilization scaling out at 80 % on top of IAC-5's
    tracking at 70 %) is by design: tracking scales out first, the alarm's step only comes
    when CPU stays above tracking's band (tracking in its cooldown), like a step policy beside a
    target-tracking one. It is reported only once the file asks for it explicitly (an
    ``action: scale_out``) or moves the threshold into tracking's band, where the two
    oscillate."""
    if not autoscaling.enabled or monitoring_issues(alarms, autoscaling):
        return []
    policy = scaling_policy(autoscaling)
    high = policy.target * (1 + policy.tolerance)
    definitions = {a.name: a for a in alarm_definitions(alarms)}
    builtin = {a.name for a in DEFAULT_ALARMS}
    out: list[tuple[str, str]] = []
    for path, message in check_scaling_conflicts(tuple(definitions.values()), policy, "alarms"):
        name = path.removeprefix("alarms.").removesuffix(".action")
        alarm = definitions.get(name)
        cfg = alarms.get(name)
        by_default = name in builtin and (cfg is None or cfg.action is None)
        if by_default and alarm is not None and alarm.rule.threshold > high:
            continue
        out.append((path, message))
    return out
