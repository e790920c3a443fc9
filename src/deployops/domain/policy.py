"""The automatic-rollback policy (RB-1) and the decision it leads to, with correlation (RB-2).

The guide's table is :data:`DEFAULT_ROLLBACK_POLICY`; every number in it is a field of a frozen
dataclass, so configuration builds its own with ``dataclasses.replace``:

======================  =========  ======  ==============================================
metric                  threshold  window  action
======================  =========  ======  ==============================================
error rate              > 5 %      5 min   roll back at once
P99 response time       > 1000 ms  3 min   warn; roll back if it lasts 10 min
memory utilisation      > 90 %     2 min   scale out; roll back if that fails
CPU utilisation         > 85 %     5 min   try to scale out
health-check failures   > 50 %     1 min   roll back at once
======================  =========  ======  ==============================================

"Scale out; roll back if that fails" — the scale-out *fails* when there is no room to scale
(already at the maximum), when the added replicas are not healthy ``scale_out_grace_s`` after
the scale-out started, or when the rule still breaches ``scale_out_grace_s`` after they became
healthy.

Before a rollback the release is correlated with the baseline (the previous version's series
for the same metric): if the baseline shows the same breach, the release is not blamed and the
action becomes ``notify``. Every :class:`Decision` carries its evidence as a JSON-ready dict.

>>> from datetime import UTC, datetime, timedelta
>>> from deployops.domain.rules import Series
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> health = DEFAULT_ROLLBACK_POLICY.rule("health-check-failures")
>>> decide(health, Series.regular([75.0], start=t0), now=t0 + timedelta(minutes=1)).action
<Action.ROLLBACK: 'rollback'>
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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

__all__ = [
    "DEFAULT_ROLLBACK_POLICY",
    "Action",
    "Decision",
    "RollbackPolicy",
    "RollbackRule",
    "RuleAction",
    "ScaleOutProgress",
    "decide",
    "decide_all",
    "default_rollback_rules",
    "most_urgent",
    "validate_policy",
]


class RuleAction(StrEnum):
    """What a rule asks for when it breaches (configured)."""

    ROLLBACK = "rollback"
    SCALE_OUT = "scale_out"
    SCALE_OUT_THEN_ROLLBACK = "scale_out_then_rollback"
    NOTIFY = "notify"


class Action(StrEnum):
    """What the engine does now (decided). Ordered from least to most urgent."""

    NONE = "none"
    NOTIFY = "notify"
    SCALE_OUT = "scale_out"
    ROLLBACK = "rollback"


_URGENCY = {Action.NONE: 0, Action.NOTIFY: 1, Action.SCALE_OUT: 2, Action.ROLLBACK: 3}


@dataclass(frozen=True, slots=True, kw_only=True)
class RollbackRule:
    """A rule and what to do when it breaches. A ``WARNING`` (escalation) always notifies."""

    rule: Rule
    action: RuleAction
    scale_out_grace_s: float = 300.0  # SCALE_OUT_THEN_ROLLBACK: how long the scale-out may take

    @property
    def name(self) -> str:
        return self.rule.name


@dataclass(frozen=True, slots=True, kw_only=True)
class ScaleOutProgress:
    """Where the scale-out a rule asked for stands (the engine records it)."""

    started_at: datetime
    healthy_at: datetime | None = None  # when every added replica was healthy
    no_room: bool = False  # already at the maximum capacity

    def to_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(),
            "healthy_at": self.healthy_at.isoformat() if self.healthy_at else None,
            "no_room": self.no_room,
        }


@dataclass(frozen=True, slots=True)
class RollbackPolicy:
    rules: tuple[RollbackRule, ...]

    def rule(self, name: str) -> RollbackRule:
        for r in self.rules:
            if r.name == name:
                return r
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.rules)


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do about one rule now, why, and the evidence."""

    rule: str
    action: Action
    verdict: Verdict
    reason: str
    caused_by_release: bool
    evaluation: Evaluation
    baseline: Evaluation | None = None
    scale_out: ScaleOutProgress | None = None

    def evidence(self) -> dict[str, Any]:
        """The JSON-serialisable record: series, thresholds, baseline and verdict."""
        return {
            "rule": self.rule,
            "action": self.action.value,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "caused_by_release": self.caused_by_release,
            "evaluation": self.evaluation.evidence(),
            "baseline": self.baseline.evidence() if self.baseline else None,
            "scale_out": self.scale_out.to_dict() if self.scale_out else None,
        }


def default_rollback_rules(
    *, period_s: int = 60, min_requests: int = 20
) -> tuple[RollbackRule, ...]:
    """The guide's RB-1 table. ``min_requests`` per period before error rate or latency is
    judged (a quiet service is not rolled back on three requests)."""

    def periods(window_s: int) -> int:
        return max(1, window_s // period_s)

    def rule(
        name: str,
        metric: MetricName,
        stat: Statistic,
        threshold: float,
        window_s: int,
        **extra: Any,
    ) -> Rule:
        n = periods(window_s)
        return Rule(
            name=name,
            metric=metric,
            statistic=stat,
            comparison=Comparison.GT,
            threshold=threshold,
            period_s=period_s,
            evaluation_periods=n,
            datapoints_to_alarm=n,
            # No data is no evidence against a release; failing queries have their own verdict.
            missing_data=MissingData.NOT_BREACHING,
            **extra,
        )

    return (
        RollbackRule(
            rule=rule(
                "error-rate",
                MetricName.ERROR_RATE,
                Statistic.AVERAGE,
                5.0,
                300,
                min_samples=min_requests,
            ),
            action=RuleAction.ROLLBACK,
        ),
        RollbackRule(
            rule=rule(
                "p99-latency",
                MetricName.RESPONSE_TIME,
                Statistic.P99,
                1000.0,
                180,
                escalate_after_s=600.0,
                min_samples=min_requests,
            ),
            action=RuleAction.ROLLBACK,
        ),
        RollbackRule(
            rule=rule("memory", MetricName.MEMORY, Statistic.AVERAGE, 90.0, 120),
            action=RuleAction.SCALE_OUT_THEN_ROLLBACK,
            scale_out_grace_s=300.0,
        ),
        RollbackRule(
            rule=rule("cpu", MetricName.CPU, Statistic.AVERAGE, 85.0, 300),
            action=RuleAction.SCALE_OUT,
        ),
        RollbackRule(
            rule=rule(
                "health-check-failures",
                MetricName.HEALTH_CHECK_FAILURES,
                Statistic.AVERAGE,
                50.0,
                60,
            ),
            action=RuleAction.ROLLBACK,
        ),
    )


DEFAULT_ROLLBACK_POLICY = RollbackPolicy(rules=default_rollback_rules())

_SeriesLike = Series | Sequence[Datapoint]


def decide(
    rollback_rule: RollbackRule,
    series: _SeriesLike,
    *,
    now: datetime,
    baseline: _SeriesLike | None = None,
    scale_out: ScaleOutProgress | None = None,
) -> Decision:
    """Evaluate one rule and turn the verdict into an action.

    ``baseline`` is the previous version's series for the same metric (RB-2 correlation);
    ``scale_out`` is the progress of a scale-out this rule already asked for.
    """
    rule = rollback_rule.rule
    ev = evaluate(rule, series, now=now)
    base = evaluate(rule, baseline, now=now) if baseline is not None else None

    def decision(action: Action, reason: str, *, blamed: bool = True) -> Decision:
        return Decision(
            rule=rule.name,
            action=action,
            verdict=ev.verdict,
            reason=reason,
            caused_by_release=blamed and action is not Action.NONE,
            evaluation=ev,
            baseline=base,
            scale_out=scale_out,
        )

    if ev.verdict is Verdict.QUERY_ERROR:
        return decision(Action.NOTIFY, f"not judged: {ev.reason}", blamed=False)
    if ev.verdict in (Verdict.OK, Verdict.INSUFFICIENT_DATA):
        return decision(Action.NONE, ev.reason, blamed=False)
    if ev.verdict is Verdict.WARNING:
        return decision(Action.NOTIFY, f"warning: {ev.reason}")

    def rollback(reason: str) -> Decision:
        if base is not None and base.verdict in (Verdict.BREACHING, Verdict.WARNING):
            return decision(
                Action.NOTIFY,
                f"not caused by this release: the baseline shows the same breach "
                f"({base.reason}); {reason}",
                blamed=False,
            )
        return decision(Action.ROLLBACK, reason)

    action = rollback_rule.action
    if action is RuleAction.ROLLBACK:
        return rollback(ev.reason)
    if action is RuleAction.NOTIFY:
        return decision(Action.NOTIFY, ev.reason)
    if action is RuleAction.SCALE_OUT:
        if scale_out is not None and scale_out.no_room:
            return decision(Action.NOTIFY, f"{ev.reason}; no room to scale out")
        return decision(Action.SCALE_OUT, ev.reason)

    # SCALE_OUT_THEN_ROLLBACK
    grace = rollback_rule.scale_out_grace_s
    if scale_out is None:
        return decision(Action.SCALE_OUT, f"{ev.reason}; scaling out first")
    if scale_out.no_room:
        return rollback(f"{ev.reason}; scale-out failed: no room to scale out")
    if scale_out.healthy_at is None:
        waited = (now - scale_out.started_at).total_seconds()
        if waited >= grace:
            return rollback(
                f"{ev.reason}; scale-out failed: added replicas not healthy after {waited:g}s"
            )
        return decision(Action.NONE, f"{ev.reason}; waiting for the added replicas to be healthy")
    since = (now - scale_out.healthy_at).total_seconds()
    if since >= grace:
        return rollback(
            f"{ev.reason}; scale-out failed: still breaching {since:g}s after the added "
            "replicas became healthy"
        )
    return decision(
        Action.NONE, f"{ev.reason}; scaled out, judging again {grace - since:g}s from now"
    )


def decide_all(
    policy: RollbackPolicy,
    series: Mapping[str, _SeriesLike],
    *,
    now: datetime,
    baselines: Mapping[str, _SeriesLike] | None = None,
    scale_outs: Mapping[str, ScaleOutProgress] | None = None,
) -> tuple[Decision, ...]:
    """One decision per rule; mappings are keyed by rule name (a rule without a series is
    judged on an empty one)."""
    return tuple(
        decide(
            r,
            series.get(r.name, Series()),
            now=now,
            baseline=(baselines or {}).get(r.name),
            scale_out=(scale_outs or {}).get(r.name),
        )
        for r in policy.rules
    )


def most_urgent(decisions: Sequence[Decision]) -> Decision | None:
    """The decision to act on: rollback before scale-out before notify; None if nothing to do.
    Ties keep the policy's order."""
    best: Decision | None = None
    for d in decisions:
        if d.action is Action.NONE:
            continue
        if best is None or _URGENCY[d.action] > _URGENCY[best.action]:
            best = d
    return best


def validate_policy(policy: RollbackPolicy, path: str = "rollback") -> list[tuple[str, str]]:
    """Every problem in the policy as ``(path, message)`` pairs (empty: valid)."""
    issues: list[tuple[str, str]] = []
    seen: set[str] = set()
    for r in policy.rules:
        where = f"{path}.{r.name}" if path else r.name
        if r.name in seen:
            issues.append((where, f"rule {r.name!r} is defined twice; give each rule its own name"))
        seen.add(r.name)
        issues.extend(validate_rule(r.rule, where))
        if r.action is RuleAction.SCALE_OUT_THEN_ROLLBACK and r.scale_out_grace_s <= 0:
            issues.append(
                (
                    f"{where}.scale_out_grace_s",
                    "must be more than 0 seconds: the time the added replicas get before the "
                    "scale-out counts as failed",
                )
            )
    return issues
