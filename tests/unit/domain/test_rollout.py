"""Which rollback rules become the platform's alarms on a rolling deployment (RB-1, IAC-4)."""

from __future__ import annotations

from dataclasses import replace

from deployops.config.rollback import RollbackSettings
from deployops.domain.policy import DEFAULT_ROLLBACK_POLICY, RuleAction
from deployops.domain.rollout import Rollout, armed_rules, unarmed_rules


def test_only_rules_that_roll_back_are_armed_over_the_window_they_act_on() -> None:
    """An alarm can only roll back: CPU (scale out) is left to deployops; p99 is armed over
    its 10-minute escalation, memory over its window plus the scale-out grace."""
    armed = {a.rule.name: a for a in armed_rules(DEFAULT_ROLLBACK_POLICY)}
    assert list(armed) == ["error-rate", "p99-latency", "memory", "health-check-failures"]
    assert unarmed_rules(DEFAULT_ROLLBACK_POLICY) == ("cpu",)
    assert armed["error-rate"].rule == DEFAULT_ROLLBACK_POLICY.rule("error-rate").rule
    p99 = armed["p99-latency"].rule
    assert (p99.evaluation_periods, p99.m_of_n, p99.escalate_after_s) == (10, (10, 10), None)
    assert armed["memory"].rule.window_s == 420.0
    assert "420s" in armed["memory"].note
    assert armed["health-check-failures"].rule.evaluation_periods == 1


def test_configured_rules_and_actions_are_followed() -> None:
    """The policy as configured: a rule turned to notify is not armed, one of your own that
    rolls back is, at its own period."""
    settings = RollbackSettings.model_validate(
        {
            "period": "30s",
            "rules": {
                "error-rate": {"action": "notify"},
                "slow": {
                    "metric": "TargetResponseTime",
                    "statistic": "p90",
                    "threshold": 400,
                    "window": "2m",
                    "action": "rollback",
                },
            },
        }
    )
    armed = {a.rule.name: a.rule for a in armed_rules(settings.policy())}
    assert "error-rate" not in armed
    assert (armed["slow"].period_s, armed["slow"].evaluation_periods) == (30, 4)
    cpu = replace(DEFAULT_ROLLBACK_POLICY.rule("cpu"), action=RuleAction.ROLLBACK)
    assert armed_rules(replace(DEFAULT_ROLLBACK_POLICY, rules=(cpu,)))[0].rule.name == "cpu"


def test_a_rollout_reads_as_running_rolling_back_or_rolled_back() -> None:
    r = Rollout(deployment="d", status="ROLLBACK_IN_PROGRESS", triggered_alarms=("a",))
    assert (r.running, r.rolling_back, r.rolled_back, r.ended) == (False, True, False, False)
    assert Rollout(deployment="d", status="ROLLBACK_SUCCESSFUL").ended
    assert Rollout(deployment="d", status="IN_PROGRESS").to_dict()["status"] == "IN_PROGRESS"
