"""A rolling update the platform carries out and rolls back by itself, with the rollback rules
armed as the platform's alarms (RB-1 on ECS rolling deployments, IAC-4).

ECS watches CloudWatch alarms named in ``deploymentConfiguration.alarms`` while a rolling
deployment runs (and for a bake time after it reached steady state); one in ``ALARM`` fails the
deployment and, with ``rollback: true``, ECS returns the service to the last completed one.
:func:`armed_rules` says which rules of the rollback policy become such alarms and over which
window: an alarm can only *roll back*, so a rule whose action is a scale-out or a notice is not
armed, and a rule that rolls back only after an escalation (p99 latency: warn after 3 min, roll
back after 10 min) or after a failed scale-out (memory) is armed over that longer window.

>>> from deployops.domain.policy import DEFAULT_ROLLBACK_POLICY
>>> [(a.rule.name, a.rule.evaluation_periods) for a in armed_rules(DEFAULT_ROLLBACK_POLICY)]
[('error-rate', 5), ('p99-latency', 10), ('memory', 7), ('health-check-failures', 1)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from deployops.domain.policy import RollbackPolicy, RollbackRule, RuleAction
from deployops.domain.rules import Rule

__all__ = ["ArmedRule", "Rollout", "armed_rules", "unarmed_rules"]


@dataclass(frozen=True, slots=True)
class ArmedRule:
    """One rollback rule as the platform's alarm: ``rule`` has the window the alarm must
    breach for before the platform rolls back."""

    rule: Rule
    source: RollbackRule
    note: str = ""


def _periods(seconds: float, period_s: int) -> int:
    return max(1, math.ceil(seconds / max(period_s, 1)))


def armed_rules(policy: RollbackPolicy) -> tuple[ArmedRule, ...]:
    """The rules of ``policy`` that roll back, each with the window its alarm watches."""
    out: list[ArmedRule] = []
    for rr in policy.rules:
        rule = rr.rule
        if rr.action is RuleAction.ROLLBACK:
            needed = max(rule.window_s, rule.breach_duration_s, rule.escalate_after_s or 0.0)
            note = ""
            if rule.escalate_after_s:
                note = f"rolls back once breached for {rule.escalate_after_s:g}s"
        elif rr.action is RuleAction.SCALE_OUT_THEN_ROLLBACK:
            # The platform's alarm cannot see the scale-out: it rolls back when the breach
            # outlasted the window and the scale-out's grace together.
            needed = max(rule.window_s, rule.breach_duration_s) + rr.scale_out_grace_s
            note = f"rolls back once breached for {needed:g}s (scale-out grace included)"
        else:
            continue
        n = _periods(needed, rule.period_s)
        if n == rule.evaluation_periods:
            armed = replace(rule, escalate_after_s=None, breach_duration_s=0.0)
        else:
            armed = replace(
                rule,
                evaluation_periods=n,
                datapoints_to_alarm=n,
                escalate_after_s=None,
                breach_duration_s=0.0,
            )
        out.append(ArmedRule(rule=armed, source=rr, note=note))
    return tuple(out)


def unarmed_rules(policy: RollbackPolicy) -> tuple[str, ...]:
    """Rules the platform's alarms leave to deployops' own observation (they never roll back
    by themselves: a scale-out, a notice)."""
    armed = {a.rule.name for a in armed_rules(policy)}
    return tuple(r.name for r in policy.rules if r.name not in armed)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rollout:
    """A rolling deployment as the platform reports it (ECS ``DescribeServiceDeployments``)."""

    deployment: str
    status: str  # PENDING, IN_PROGRESS, SUCCESSFUL, STOPPED, ROLLBACK_*...
    reason: str = ""
    alarms: tuple[str, ...] = ()  # the alarms the platform watches
    triggered_alarms: tuple[str, ...] = ()  # the ones that went into ALARM
    circuit_breaker: bool = False  # the deployment circuit breaker tripped
    rollback_reason: str = ""

    @property
    def running(self) -> bool:
        return self.status in ("PENDING", "IN_PROGRESS")

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCESSFUL"

    @property
    def rolling_back(self) -> bool:
        return self.status in ("ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "STOP_REQUESTED")

    @property
    def rolled_back(self) -> bool:
        return self.status == "ROLLBACK_SUCCESSFUL"

    @property
    def ended(self) -> bool:
        return self.status in ("SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "status": self.status,
            "reason": self.reason,
            "alarms": list(self.alarms),
            "triggered_alarms": list(self.triggered_alarms),
            "circuit_breaker": self.circuit_breaker,
            "rollback_reason": self.rollback_reason,
        }
