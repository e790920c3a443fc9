"""Alarms with CloudWatch semantics (MON-1): the guide's five, the pure state machine and its
history, and the check against the target-tracking policy (IAC-5)."""

from __future__ import annotations

import doctest
import json
from dataclasses import replace
from datetime import timedelta

from deployops.clock import VirtualClock
from deployops.domain import alarms as alarms_module
from deployops.domain.alarms import (
    DEFAULT_ALARMS,
    AlarmAction,
    AlarmDefinition,
    AlarmState,
    AlarmTransition,
    Severity,
    check_scaling_conflicts,
    default_alarm,
    evaluate_alarm,
    transition,
    validate_alarms,
)
from deployops.domain.model import Datapoint, Measurement, MetricName, MetricQuery, Statistic
from deployops.domain.rules import Comparison, MissingData, Series, evaluate
from deployops.domain.scaling import ScalingPolicy

MIN = timedelta(minutes=1)


def test_docstring_examples_hold() -> None:
    assert doctest.testmod(alarms_module).failed == 0


def test_defaults_are_the_guides_five_alarms_mon1() -> None:
    table = {
        a.name: (
            a.rule.metric,
            a.rule.comparison,
            a.rule.threshold,
            a.rule.evaluation_periods,
            a.rule.period_s,
            a.action,
            a.severity,
        )
        for a in DEFAULT_ALARMS
    }
    assert table == {
        "HighCPUUtilization": (
            MetricName.CPU,
            Comparison.GE,
            80.0,
            2,
            60,
            AlarmAction.SCALE_OUT,
            Severity.WARNING,
        ),
        "HighErrorRate": (
            MetricName.HTTP_5XX,
            Comparison.GE,
            10.0,
            1,
            60,
            AlarmAction.NOTIFY,
            Severity.WARNING,
        ),
        "LowHealthyHosts": (
            MetricName.HEALTHY_HOSTS,
            Comparison.LT,
            2.0,
            1,
            60,
            AlarmAction.NOTIFY,
            Severity.CRITICAL,
        ),
        "HighMemoryUsage": (
            MetricName.MEMORY,
            Comparison.GE,
            85.0,
            2,
            60,
            AlarmAction.SCALE_OUT,
            Severity.WARNING,
        ),
        "DatabaseConnections": (
            MetricName.DB_CONNECTIONS,
            Comparison.GT,
            80.0,
            1,
            60,
            AlarmAction.NOTIFY,
            Severity.WARNING,
        ),
    }
    assert default_alarm("HighErrorRate").rule.statistic is Statistic.SUM
    assert default_alarm("LowHealthyHosts").rule.statistic is Statistic.MINIMUM
    assert validate_alarms(DEFAULT_ALARMS) == []


def test_cpu_alarm_needs_two_periods_and_fires_scale_out_mon1() -> None:
    cpu = default_alarm("HighCPUUtilization")
    t0 = VirtualClock().now()
    one = Series.regular([50.0, 85.0], start=t0)
    state, record = evaluate_alarm(cpu, one, AlarmState.OK, now=t0 + 2 * MIN)
    assert (state, record) == (AlarmState.OK, None)
    two = Series.regular([50.0, 85.0, 80.0], start=t0)
    state, record = evaluate_alarm(cpu, two, AlarmState.OK, now=t0 + 3 * MIN)
    assert state is AlarmState.ALARM
    assert record is not None
    assert (record.previous, record.state, record.action) == (
        AlarmState.OK,
        AlarmState.ALARM,
        AlarmAction.SCALE_OUT,
    )
    assert record.at == t0 + 3 * MIN


def test_error_alarm_notifies_at_once_and_minutes_without_errors_are_good_mon1() -> None:
    errors = default_alarm("HighErrorRate")
    t0 = VirtualClock().now()
    # the load balancer publishes no 5XX count for a minute without errors
    quiet = Series()
    assert evaluate_alarm(errors, quiet, AlarmState.OK, now=t0)[0] is AlarmState.OK
    burst = [Datapoint(timestamp=t0 + timedelta(seconds=s), value=4.0) for s in (0, 20, 40)]
    state, record = evaluate_alarm(errors, burst, AlarmState.OK, now=t0 + MIN)
    assert state is AlarmState.ALARM  # 12 errors summed over the minute
    assert record is not None
    assert record.action is AlarmAction.NOTIFY


def test_low_healthy_hosts_is_critical_mon1() -> None:
    hosts = default_alarm("LowHealthyHosts")
    t0 = VirtualClock().now()
    state, record = evaluate_alarm(
        hosts, Series.regular([1.0], start=t0), AlarmState.OK, now=t0 + MIN
    )
    assert state is AlarmState.ALARM
    assert record is not None
    assert record.severity is Severity.CRITICAL
    ok, _ = evaluate_alarm(hosts, Series.regular([2.0], start=t0), AlarmState.OK, now=t0 + MIN)
    assert ok is AlarmState.OK


def test_database_connections_above_80_percent_of_max_warns_mon1() -> None:
    db = default_alarm("DatabaseConnections")
    t0 = VirtualClock().now()
    at_80 = evaluate_alarm(db, Series.regular([80.0], start=t0), AlarmState.OK, now=t0 + MIN)
    assert at_80 == (AlarmState.OK, None)
    state, record = evaluate_alarm(
        db, Series.regular([81.0], start=t0), AlarmState.OK, now=t0 + MIN
    )
    assert state is AlarmState.ALARM
    assert record is not None
    assert (record.action, record.severity) == (AlarmAction.NOTIFY, Severity.WARNING)


def test_state_history_over_time_is_a_list_of_transition_records_mon1() -> None:
    """Memory climbs, stays, recovers, then the metric disappears."""
    memory = default_alarm("HighMemoryUsage")
    clock = VirtualClock()
    t0 = clock.now()
    values = [60.0, 70.0, 88.0, 90.0, 92.0, 70.0, 60.0, 60.0]
    state = AlarmState.INSUFFICIENT_DATA
    history: list[AlarmTransition] = []
    for minute in range(1, 12):
        clock.advance(60)
        series = Series.regular(values[:minute], start=t0)
        state, record = evaluate_alarm(memory, series, state, now=clock.now())
        if record:
            history.append(record)
    assert [(r.previous, r.state, (r.at - t0) // MIN) for r in history] == [
        (AlarmState.INSUFFICIENT_DATA, AlarmState.OK, 1),
        (AlarmState.OK, AlarmState.ALARM, 4),
        (AlarmState.ALARM, AlarmState.OK, 6),
        (AlarmState.OK, AlarmState.INSUFFICIENT_DATA, 10),  # no data for two periods
    ]
    assert [r.action for r in history] == [None, AlarmAction.SCALE_OUT, None, None]
    assert [r.resolves for r in history] == [False, False, True, False]
    evidence = json.loads(json.dumps(history[1].evidence()))
    assert evidence["state"] == "ALARM"
    assert evidence["evaluation"]["rule"]["threshold"] == 85.0


def test_ignore_keeps_the_previous_state_when_data_stops_mon1() -> None:
    memory = default_alarm("HighMemoryUsage")
    ignoring = replace(memory, rule=replace(memory.rule, missing_data=MissingData.IGNORE))
    now = VirtualClock().now()
    assert evaluate_alarm(ignoring, Series(), AlarmState.ALARM, now=now) == (
        AlarmState.ALARM,
        None,
    )
    state, record = evaluate_alarm(memory, Series(), AlarmState.ALARM, now=now)
    assert state is AlarmState.INSUFFICIENT_DATA
    assert record is not None
    assert record.resolves


def test_datapoints_to_alarm_m_of_n_for_alarms_mon1() -> None:
    cpu = default_alarm("HighCPUUtilization")
    two_of_three = replace(cpu, rule=replace(cpu.rule, evaluation_periods=3, datapoints_to_alarm=2))
    t0 = VirtualClock().now()
    series = Series.regular([85.0, 40.0, 85.0], start=t0)
    assert evaluate_alarm(two_of_three, series, AlarmState.OK, now=t0 + 3 * MIN)[0] is (
        AlarmState.ALARM
    )
    assert evaluate_alarm(cpu, series, AlarmState.OK, now=t0 + 3 * MIN)[0] is AlarmState.OK


def test_failing_queries_make_the_alarm_insufficient_data_with_the_reason() -> None:
    cpu = default_alarm("HighCPUUtilization")
    now = VirtualClock().now()
    query = MetricQuery(
        metric=MetricName.CPU,
        scope="web",
        statistic=Statistic.AVERAGE,
        start=now - 2 * MIN,
        end=now,
    )
    failed = Measurement(query=query, error="throttled")
    ev = evaluate(cpu.rule, Series.from_measurements([failed] * 3), now=now)
    state, record = transition(cpu, AlarmState.ALARM, ev)
    assert state is AlarmState.INSUFFICIENT_DATA
    assert record is not None
    assert "throttled" in record.reason


def test_alarm_scale_out_fighting_target_tracking_is_warned_iac5_mon1() -> None:
    """HighCPUUtilization scales out at 80 % while target tracking holds CPU at 70 %."""
    warnings = check_scaling_conflicts(DEFAULT_ALARMS, ScalingPolicy())
    assert [p for p, _ in warnings] == ["alarms.HighCPUUtilization.action"]
    message = warnings[0][1]
    assert "CPUUtilization >= 80" in message
    assert "holds CPUUtilization at 70" in message
    assert "set this alarm's action to notify" in message

    below = default_alarm("HighCPUUtilization")
    below = replace(below, rule=replace(below.rule, threshold=65.0))
    (only,) = check_scaling_conflicts([below], ScalingPolicy())
    assert "oscillate" in only[1]

    notify_only = replace(default_alarm("HighCPUUtilization"), action=AlarmAction.NOTIFY)
    assert check_scaling_conflicts([notify_only], ScalingPolicy()) == []
    memory_tracking = ScalingPolicy(metric=MetricName.MEMORY, target=70.0)
    assert [p for p, _ in check_scaling_conflicts(DEFAULT_ALARMS, memory_tracking)] == [
        "alarms.HighMemoryUsage.action"
    ]


def test_invalid_alarms_are_reported_with_paths() -> None:
    cpu = default_alarm("HighCPUUtilization")
    broken = AlarmDefinition(
        rule=replace(cpu.rule, evaluation_periods=2, datapoints_to_alarm=3),
        action=AlarmAction.SCALE_OUT,
    )
    issues = validate_alarms([cpu, broken])
    assert [p for p, _ in issues] == [
        "alarms.HighCPUUtilization",
        "alarms.HighCPUUtilization.datapoints_to_alarm",
    ]
