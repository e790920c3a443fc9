"""Alarms with CloudWatch semantics (MON-1), judged by the one rule engine in ``rules``.

An alarm is a :class:`~deployops.domain.rules.Rule` plus what to do on ``ALARM``. The state
machine is a pure function, :func:`transition`: previous state + new evaluation -> new state and,
when the state changes, a transition record to keep as history and to act on.

The guide's five alarms are :data:`DEFAULT_ALARMS`:

=====================  ===================  ===============  =======  ======================
name                   metric               threshold        periods  action
=====================  ===================  ===============  =======  ======================
HighCPUUtilization     CPUUtilization       >= 80 %          2        scale out
HighErrorRate          HTTPCode_5XX         >= 10 per minute 1        notify at once
LowHealthyHosts        HealthyHostCount     < 2              1        critical notification
HighMemoryUsage        MemoryUtilization    >= 85 %          2        scale out
DatabaseConnections    DatabaseConnections  > 80 % of max    1        warning
=====================  ===================  ===============  =======  ======================

>>> from datetime import UTC, datetime, timedelta
>>> from deployops.domain.rules import Series
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> cpu = default_alarm("HighCPUUtilization")
>>> state, record = evaluate_alarm(
...     cpu, Series.regular([85.0, 91.0], start=t0), AlarmState.OK, now=t0 + timedelta(minutes=2)
... )
>>> state, record.action if record else None
(<AlarmState.ALARM: 'ALARM'>, <AlarmAction.SCALE_OUT: 'scale_out'>)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from deployops.domain.model import Datapoint, MetricName, Statistic
from deployops.domain.rules import (
    Comparison,
    Evaluation,
    MissingData,
    Rule,
    Series,
    Verdict,
    evaluate,
    validate_rule,
)
from deployops.domain.scaling import ScalingPolicy

__all__ = [
    "DEFAULT_ALARMS",
    "AlarmAction",
    "AlarmDefinition",
    "AlarmState",
    "AlarmTransition",
    "Severity",
    "check_scaling_conflicts",
    "default_alarm",
    "evaluate_alarm",
    "transition",
    "validate_alarms",
]


class AlarmState(StrEnum):
    OK = "OK"
    ALARM = "ALARM"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


class AlarmAction(StrEnum):
    SCALE_OUT = "scale_out"
    NOTIFY = "notify"


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"  # MON-2: only critical alerts page (PagerDuty)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmDefinition:
    rule: Rule
    action: AlarmAction
    severity: Severity = Severity.WARNING
    description: str = ""

    @property
    def name(self) -> str:
        return self.rule.name


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    """One state change, for the alarm history. ``action`` is what to fire: the alarm's action
    when it enters ``ALARM``, otherwise None (leaving ``ALARM`` resolves the notification)."""

    alarm: str
    previous: AlarmState
    state: AlarmState
    at: datetime
    reason: str
    action: AlarmAction | None
    severity: Severity
    evaluation: Evaluation

    @property
    def resolves(self) -> bool:
        """The alarm left ``ALARM``: an open notification (incident) should be resolved."""
        return self.previous is AlarmState.ALARM and self.state is not AlarmState.ALARM

    def evidence(self) -> dict[str, Any]:
        return {
            "alarm": self.alarm,
            "previous": self.previous.value,
            "state": self.state.value,
            "at": self.at.isoformat(),
            "reason": self.reason,
            "action": self.action.value if self.action else None,
            "severity": self.severity.value,
            "evaluation": self.evaluation.evidence(),
        }


def _alarm(
    name: str,
    metric: MetricName,
    statistic: Statistic,
    comparison: Comparison,
    threshold: float,
    periods: int,
    action: AlarmAction,
    severity: Severity,
    description: str,
    missing: MissingData = MissingData.MISSING,
) -> AlarmDefinition:
    return AlarmDefinition(
        rule=Rule(
            name=name,
            metric=metric,
            statistic=statistic,
            comparison=comparison,
            threshold=threshold,
            period_s=60,  # IAC-5: 1-minute resolution
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            missing_data=missing,
        ),
        action=action,
        severity=severity,
        description=description,
    )


DEFAULT_ALARMS: tuple[AlarmDefinition, ...] = (
    _alarm(
        "HighCPUUtilization",
        MetricName.CPU,
        Statistic.AVERAGE,
        Comparison.GE,
        80.0,
        2,
        AlarmAction.SCALE_OUT,
        Severity.WARNING,
        "CPU at or above 80 % for 2 minutes: scale out",
    ),
    _alarm(
        "HighErrorRate",
        MetricName.HTTP_5XX,
        Statistic.SUM,
        Comparison.GE,
        10.0,
        1,
        AlarmAction.NOTIFY,
        Severity.WARNING,
        "10 or more 5XX responses in a minute: notify at once",
        # The load balancer publishes no 5XX count for a minute without one: that is good news.
        missing=MissingData.NOT_BREACHING,
    ),
    _alarm(
        "LowHealthyHosts",
        MetricName.HEALTHY_HOSTS,
        Statistic.MINIMUM,
        Comparison.LT,
        2.0,
        1,
        AlarmAction.NOTIFY,
        Severity.CRITICAL,
        "fewer than 2 healthy hosts: critical notification",
    ),
    _alarm(
        "HighMemoryUsage",
        MetricName.MEMORY,
        Statistic.AVERAGE,
        Comparison.GE,
        85.0,
        2,
        AlarmAction.SCALE_OUT,
        Severity.WARNING,
        "memory at or above 85 % for 2 minutes: scale out",
    ),
    _alarm(
        "DatabaseConnections",
        MetricName.DB_CONNECTIONS,  # percent of max_connections
        Statistic.MAXIMUM,
        Comparison.GT,
        80.0,
        1,
        AlarmAction.NOTIFY,
        Severity.WARNING,
        "database connections above 80 % of the maximum: warning",
    ),
)


def default_alarm(name: str) -> AlarmDefinition:
    for a in DEFAULT_ALARMS:
        if a.name == name:
            return a
    raise KeyError(name)


def transition(
    alarm: AlarmDefinition, previous: AlarmState, evaluation: Evaluation
) -> tuple[AlarmState, AlarmTransition | None]:
    """The new state, and a transition record if the state changed.

    Breaching (or warning) is ``ALARM``, ok is ``OK``; no data is ``INSUFFICIENT_DATA``, except
    with ``MissingData.IGNORE`` where the previous state is kept; failing metric queries are
    ``INSUFFICIENT_DATA`` with the query error as the reason.
    """
    verdict = evaluation.verdict
    if verdict in (Verdict.BREACHING, Verdict.WARNING):
        state = AlarmState.ALARM
    elif verdict is Verdict.OK:
        state = AlarmState.OK
    elif evaluation.retain:
        state = previous
    else:
        state = AlarmState.INSUFFICIENT_DATA
    if state is previous:
        return state, None
    return state, AlarmTransition(
        alarm=alarm.name,
        previous=previous,
        state=state,
        at=evaluation.at,
        reason=evaluation.reason,
        action=alarm.action if state is AlarmState.ALARM else None,
        severity=alarm.severity,
        evaluation=evaluation,
    )


def evaluate_alarm(
    alarm: AlarmDefinition,
    series: Series | Sequence[Datapoint],
    previous: AlarmState,
    *,
    now: datetime,
) -> tuple[AlarmState, AlarmTransition | None]:
    """Evaluate the alarm's rule on ``series`` at ``now`` and apply :func:`transition`."""
    return transition(alarm, previous, evaluate(alarm.rule, series, now=now))


def validate_alarms(
    alarms: Sequence[AlarmDefinition], path: str = "alarms"
) -> list[tuple[str, str]]:
    """Every problem in the alarm definitions as ``(path, message)`` pairs (empty: valid)."""
    issues: list[tuple[str, str]] = []
    seen: set[str] = set()
    for a in alarms:
        where = f"{path}.{a.name}" if path else a.name
        if a.name in seen:
            issues.append((where, f"alarm {a.name!r} is defined twice; alarm names are unique"))
        seen.add(a.name)
        issues.extend(validate_rule(a.rule, where))
    return issues


def check_scaling_conflicts(
    alarms: Sequence[AlarmDefinition], policy: ScalingPolicy, path: str = "alarms"
) -> list[tuple[str, str]]:
    """Warnings for alarms whose scale-out fights the target-tracking policy.

    An alarm that scales out on the metric target tracking already holds at its target adds
    tasks that drive the metric below the target, and target tracking removes them again at
    its next scale-in: capacity flaps. (Alarms on *other* metrics are not flagged: target
    tracking only scales in after its own cooldown, and that interplay is by design.)

    >>> check_scaling_conflicts(DEFAULT_ALARMS, ScalingPolicy())[0][0]
    'alarms.HighCPUUtilization.action'
    """
    warnings: list[tuple[str, str]] = []
    low = policy.target * (1 - policy.tolerance)
    high = policy.target * (1 + policy.tolerance)
    for a in alarms:
        rule = a.rule
        if a.action is not AlarmAction.SCALE_OUT or rule.metric is not policy.metric:
            continue
        where = f"{path}.{a.name}.action" if path else f"{a.name}.action"
        name = rule.metric.value
        cond = f"{name} {rule.comparison.value} {rule.threshold:g}"
        if rule.comparison in (Comparison.LT, Comparison.LE):
            why = "scaling out when the metric is low adds tasks target tracking will remove"
        elif rule.threshold > high:
            why = (
                f"target tracking already scales out above {high:g} to hold {policy.target:g}, "
                f"so the tasks this alarm adds push {name} under {low:g} and target tracking "
                "removes them again"
            )
        else:
            why = (
                f"it fires at or below target tracking's upper band ({high:g}) and the tasks it "
                f"adds push {name} under {low:g}, where target tracking scales in: the two "
                "oscillate"
            )
        warnings.append(
            (
                where,
                f"{a.name} scales out at {cond} while target tracking holds {name} at "
                f"{policy.target:g}: {why}; let target tracking own scale-out on {name} "
                "(set this alarm's action to notify) or track a different metric",
            )
        )
    return warnings
