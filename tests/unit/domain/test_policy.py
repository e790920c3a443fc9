"""The default rollback policy (RB-1) with the guide's real durations on a virtual clock, the
scale-out-then-rollback failure definition, and correlation with the baseline (RB-2)."""

from __future__ import annotations

import doctest
import json
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from deployops.clock import VirtualClock
from deployops.domain import policy as policy_module
from deployops.domain.model import Datapoint, Measurement, MetricName, MetricQuery, Statistic
from deployops.domain.policy import (
    DEFAULT_ROLLBACK_POLICY,
    Action,
    Decision,
    RollbackPolicy,
    RollbackRule,
    RuleAction,
    ScaleOutProgress,
    decide,
    decide_all,
    most_urgent,
    validate_policy,
)
from deployops.domain.rules import Comparison, Series, Verdict

MIN = timedelta(minutes=1)
BUSY = 500  # requests per minute: enough to be judged


def _run(
    rule: RollbackRule,
    value: float,
    minutes: int,
    *,
    samples: int = BUSY,
    **kwargs: object,
) -> dict[int, Decision]:
    """Feed ``value`` once a minute from t0 on a virtual clock; a decision at each minute."""
    clock = VirtualClock()
    t0 = clock.now()
    points: list[Datapoint] = []
    out: dict[int, Decision] = {}
    for minute in range(1, minutes + 1):
        points.append(Datapoint(timestamp=t0 + (minute - 1) * MIN, value=value, samples=samples))
        clock.advance(60)
        out[minute] = decide(rule, points, now=clock.now(), **kwargs)  # type: ignore[arg-type]
    return out


def _actions(decisions: dict[int, Decision]) -> list[Action]:
    return [d.action for d in decisions.values()]


def test_docstring_examples_hold() -> None:
    assert doctest.testmod(policy_module).failed == 0


def test_default_policy_is_the_guides_table_rb1() -> None:
    table = {
        r.name: (
            r.rule.metric,
            r.rule.comparison,
            r.rule.threshold,
            r.rule.window_s,
            r.rule.escalate_after_s,
            r.action,
        )
        for r in DEFAULT_ROLLBACK_POLICY.rules
    }
    assert table == {
        "error-rate": (MetricName.ERROR_RATE, Comparison.GT, 5.0, 300.0, None, RuleAction.ROLLBACK),
        "p99-latency": (
            MetricName.RESPONSE_TIME,
            Comparison.GT,
            1000.0,
            180.0,
            600.0,
            RuleAction.ROLLBACK,
        ),
        "memory": (
            MetricName.MEMORY,
            Comparison.GT,
            90.0,
            120.0,
            None,
            RuleAction.SCALE_OUT_THEN_ROLLBACK,
        ),
        "cpu": (MetricName.CPU, Comparison.GT, 85.0, 300.0, None, RuleAction.SCALE_OUT),
        "health-check-failures": (
            MetricName.HEALTH_CHECK_FAILURES,
            Comparison.GT,
            50.0,
            60.0,
            None,
            RuleAction.ROLLBACK,
        ),
    }
    assert DEFAULT_ROLLBACK_POLICY.rule("p99-latency").rule.statistic is Statistic.P99
    assert validate_policy(DEFAULT_ROLLBACK_POLICY) == []


def test_error_rate_above_5_percent_for_5_minutes_rolls_back_at_once_rb1() -> None:
    decisions = _run(DEFAULT_ROLLBACK_POLICY.rule("error-rate"), 6.0, 6)
    assert _actions(decisions) == [Action.NONE] * 4 + [Action.ROLLBACK] * 2
    five = decisions[5]
    assert five.verdict is Verdict.BREACHING
    assert five.caused_by_release is True
    # at the threshold exactly is not above it
    assert _actions(_run(DEFAULT_ROLLBACK_POLICY.rule("error-rate"), 5.0, 6)) == [Action.NONE] * 6


def test_p99_above_1000ms_warns_after_3_minutes_and_rolls_back_after_10_rb1() -> None:
    decisions = _run(DEFAULT_ROLLBACK_POLICY.rule("p99-latency"), 1400.0, 11)
    assert _actions(decisions) == ([Action.NONE] * 2 + [Action.NOTIFY] * 7 + [Action.ROLLBACK] * 2)
    assert decisions[3].verdict is Verdict.WARNING
    assert decisions[3].reason.startswith("warning: ")
    assert decisions[10].verdict is Verdict.BREACHING


def test_memory_above_90_percent_for_2_minutes_scales_out_first_rb1() -> None:
    decisions = _run(DEFAULT_ROLLBACK_POLICY.rule("memory"), 95.0, 3, samples=0)
    assert _actions(decisions) == [Action.NONE, Action.SCALE_OUT, Action.SCALE_OUT]
    assert "scaling out first" in decisions[2].reason


def test_memory_rolls_back_when_still_high_after_added_replicas_are_healthy_rb1() -> None:
    """ "Fails" = still above the threshold 300 s after the added replicas are healthy."""
    rule = DEFAULT_ROLLBACK_POLICY.rule("memory")
    clock = VirtualClock()
    t0 = clock.now()
    started = t0 + 2 * MIN
    healthy = t0 + 3 * MIN
    points = [Datapoint(timestamp=t0 + i * MIN, value=95.0) for i in range(12)]
    progress = ScaleOutProgress(started_at=started, healthy_at=healthy)

    waiting = decide(rule, points, now=t0 + 3 * MIN, scale_out=replace(progress, healthy_at=None))
    assert waiting.action is Action.NONE
    assert "waiting for the added replicas" in waiting.reason
    judging = decide(rule, points, now=healthy + 4 * MIN, scale_out=progress)
    assert judging.action is Action.NONE
    assert "judging again 60s from now" in judging.reason
    failed = decide(rule, points, now=healthy + 5 * MIN, scale_out=progress)
    assert failed.action is Action.ROLLBACK
    assert "still breaching 300s after the added replicas became healthy" in failed.reason
    assert failed.evidence()["scale_out"]["healthy_at"] == healthy.isoformat()


def test_memory_scale_out_that_worked_needs_no_rollback_rb1() -> None:
    rule = DEFAULT_ROLLBACK_POLICY.rule("memory")
    t0 = VirtualClock().now()
    # high for 3 minutes, then the added replicas bring it down
    points = [Datapoint(timestamp=t0 + i * MIN, value=95.0 if i < 3 else 60.0) for i in range(10)]
    progress = ScaleOutProgress(started_at=t0 + 2 * MIN, healthy_at=t0 + 3 * MIN)
    d = decide(rule, points, now=t0 + 10 * MIN, scale_out=progress)
    assert (d.action, d.verdict) == (Action.NONE, Verdict.OK)


def test_memory_rolls_back_when_there_is_no_room_to_scale_out_rb1() -> None:
    rule = DEFAULT_ROLLBACK_POLICY.rule("memory")
    t0 = VirtualClock().now()
    points = [Datapoint(timestamp=t0 + i * MIN, value=97.0) for i in range(2)]
    d = decide(
        rule, points, now=t0 + 2 * MIN, scale_out=ScaleOutProgress(started_at=t0, no_room=True)
    )
    assert d.action is Action.ROLLBACK
    assert "no room to scale out" in d.reason


def test_memory_rolls_back_when_added_replicas_never_become_healthy_rb1() -> None:
    rule = DEFAULT_ROLLBACK_POLICY.rule("memory")
    t0 = VirtualClock().now()
    points = [Datapoint(timestamp=t0 + i * MIN, value=97.0) for i in range(8)]
    d = decide(rule, points, now=t0 + 8 * MIN, scale_out=ScaleOutProgress(started_at=t0 + 2 * MIN))
    assert d.action is Action.ROLLBACK
    assert "not healthy after 360s" in d.reason


def test_cpu_above_85_percent_for_5_minutes_tries_to_scale_out_rb1() -> None:
    rule = DEFAULT_ROLLBACK_POLICY.rule("cpu")
    assert _actions(_run(rule, 90.0, 6, samples=0)) == [Action.NONE] * 4 + [Action.SCALE_OUT] * 2
    at_max = _run(
        rule,
        90.0,
        5,
        samples=0,
        scale_out=ScaleOutProgress(started_at=VirtualClock().now(), no_room=True),
    )
    assert at_max[5].action is Action.NOTIFY  # never a rollback for CPU
    assert "no room to scale out" in at_max[5].reason


def test_health_check_failures_above_half_for_1_minute_roll_back_at_once_rb1() -> None:
    rule = DEFAULT_ROLLBACK_POLICY.rule("health-check-failures")
    decisions = _run(rule, 75.0, 2, samples=0)
    assert _actions(decisions) == [Action.ROLLBACK, Action.ROLLBACK]
    assert _actions(_run(rule, 50.0, 2, samples=0)) == [Action.NONE, Action.NONE]


def test_baseline_equally_bad_means_no_rollback_rb2() -> None:
    """The previous version shows the same breach: not caused by this release; notify."""
    rule = DEFAULT_ROLLBACK_POLICY.rule("error-rate")
    t0 = VirtualClock().now()
    now = t0 + 5 * MIN
    green = Series.regular([8.0] * 5, start=t0, samples=BUSY)
    blue_bad = Series.regular([7.5] * 5, start=t0, samples=BUSY)
    blue_good = Series.regular([0.2] * 5, start=t0, samples=BUSY)

    shared = decide(rule, green, now=now, baseline=blue_bad)
    assert shared.action is Action.NOTIFY
    assert shared.verdict is Verdict.BREACHING
    assert shared.caused_by_release is False
    assert shared.reason.startswith("not caused by this release")

    blamed = decide(rule, green, now=now, baseline=blue_good)
    assert blamed.action is Action.ROLLBACK
    assert blamed.caused_by_release is True


def test_baseline_also_spares_a_failed_scale_out_from_rollback_rb2() -> None:
    rule = DEFAULT_ROLLBACK_POLICY.rule("memory")
    t0 = VirtualClock().now()
    series = Series.regular([95.0] * 2, start=t0)
    d = decide(
        rule,
        series,
        now=t0 + 2 * MIN,
        baseline=series,
        scale_out=ScaleOutProgress(started_at=t0, no_room=True),
    )
    assert (d.action, d.caused_by_release) == (Action.NOTIFY, False)


def test_decision_evidence_is_json_with_series_thresholds_and_baseline_rb2() -> None:
    rule = DEFAULT_ROLLBACK_POLICY.rule("error-rate")
    t0 = VirtualClock().now()
    green = Series.regular([6.0, 7.0, 8.0, 9.0, 10.0], start=t0, samples=BUSY)
    blue = Series.regular([0.1] * 5, start=t0, samples=BUSY)
    d = decide(rule, green, now=t0 + 5 * MIN, baseline=blue)
    evidence = json.loads(json.dumps(d.evidence()))
    assert evidence["action"] == "rollback"
    assert evidence["verdict"] == "breaching"
    assert evidence["caused_by_release"] is True
    assert evidence["evaluation"]["rule"]["threshold"] == 5.0
    assert evidence["evaluation"]["rule"]["evaluation_periods"] == 5
    assert [p["value"] for p in evidence["evaluation"]["periods"]] == [6.0, 7.0, 8.0, 9.0, 10.0]
    assert evidence["baseline"]["verdict"] == "ok"
    assert [p["value"] for p in evidence["baseline"]["periods"]] == [0.1] * 5


def test_a_quiet_release_is_not_rolled_back_on_three_requests_rb1() -> None:
    rule = DEFAULT_ROLLBACK_POLICY.rule("error-rate")
    decisions = _run(rule, 33.3, 6, samples=3)
    assert _actions(decisions) == [Action.NONE] * 6
    assert decisions[6].verdict is Verdict.INSUFFICIENT_DATA


def test_failing_metric_queries_notify_and_never_roll_back() -> None:
    rule = DEFAULT_ROLLBACK_POLICY.rule("health-check-failures")
    now = VirtualClock().now()
    query = MetricQuery(
        metric=MetricName.HEALTH_CHECK_FAILURES,
        scope="web",
        statistic=Statistic.AVERAGE,
        start=now - MIN,
        end=now,
    )
    failed = Measurement(query=query, error="collector unreachable")
    d = decide(rule, Series.from_measurements([failed] * 3), now=now)
    assert (d.action, d.verdict, d.caused_by_release) == (
        Action.NOTIFY,
        Verdict.QUERY_ERROR,
        False,
    )


def test_every_number_is_configurable_rb1() -> None:
    base = DEFAULT_ROLLBACK_POLICY.rule("error-rate")
    stricter = replace(
        base, rule=replace(base.rule, threshold=1.0, evaluation_periods=2, datapoints_to_alarm=2)
    )
    assert _actions(_run(stricter, 2.0, 3)) == [Action.NONE, Action.ROLLBACK, Action.ROLLBACK]


def test_decide_all_and_most_urgent_pick_the_rollback() -> None:
    t0 = VirtualClock().now()
    now = t0 + 5 * MIN
    series = {
        "error-rate": Series.regular([0.5] * 5, start=t0, samples=BUSY),
        "cpu": Series.regular([95.0] * 5, start=t0),
        "health-check-failures": Series.regular([0, 0, 0, 0, 100.0], start=t0),
    }
    decisions = decide_all(DEFAULT_ROLLBACK_POLICY, series, now=now)
    assert [d.rule for d in decisions] == list(DEFAULT_ROLLBACK_POLICY.names)
    assert {d.rule: d.action for d in decisions} == {
        "error-rate": Action.NONE,
        "p99-latency": Action.NONE,
        "memory": Action.NONE,
        "cpu": Action.SCALE_OUT,
        "health-check-failures": Action.ROLLBACK,
    }
    urgent = most_urgent(decisions)
    assert urgent is not None
    assert urgent.rule == "health-check-failures"
    calm = decide_all(DEFAULT_ROLLBACK_POLICY, {}, now=now)
    assert most_urgent(calm) is None


def test_invalid_policy_reports_every_problem_with_paths() -> None:
    good = DEFAULT_ROLLBACK_POLICY.rule("memory")
    bad = RollbackPolicy(
        rules=(
            replace(good, scale_out_grace_s=0.0),
            replace(good, rule=replace(good.rule, threshold=190.0)),
        )
    )
    issues = validate_policy(bad, "services.web.rollback")
    paths = [p for p, _ in issues]
    assert paths == [
        "services.web.rollback.memory.scale_out_grace_s",
        "services.web.rollback.memory",
        "services.web.rollback.memory.threshold",
    ]
    assert "defined twice" in issues[1][1]


@pytest.mark.parametrize("name", DEFAULT_ROLLBACK_POLICY.names)
def test_no_data_at_all_never_triggers_an_action(name: str) -> None:
    now: datetime = VirtualClock().now()
    d = decide(DEFAULT_ROLLBACK_POLICY.rule(name), Series(), now=now)
    assert d.action is Action.NONE
