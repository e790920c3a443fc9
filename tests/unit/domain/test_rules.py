"""The rule engine (RB-1, MON-1): M of N, missing data, minimum samples, durations,
escalation and query errors, on a virtual clock."""

from __future__ import annotations

import doctest
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from deployops.clock import VirtualClock
from deployops.domain import rules
from deployops.domain.model import Datapoint, Measurement, MetricName, MetricQuery, Statistic
from deployops.domain.rules import (
    Comparison,
    MissingData,
    PeriodState,
    Rule,
    Series,
    Verdict,
    evaluate,
    validate_rule,
)

MIN = timedelta(minutes=1)


def _rule(**kw: object) -> Rule:
    base = Rule(
        name="errors",
        metric=MetricName.ERROR_RATE,
        statistic=Statistic.AVERAGE,
        comparison=Comparison.GT,
        threshold=5.0,
        evaluation_periods=5,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def _at(
    clock: VirtualClock, values: Sequence[float | None], samples: int = 0
) -> tuple[Series, datetime]:
    """``values`` one per minute ending now: the last value is the minute just finished."""
    now = clock.now()
    start = now - len(values) * MIN
    return Series.regular(values, start=start, samples=samples), now


def test_docstring_examples_hold() -> None:
    assert doctest.testmod(rules).failed == 0


def test_breach_for_the_whole_window_is_breaching_and_one_good_minute_is_not_rb1() -> None:
    clock = VirtualClock()
    rule = _rule()
    series, now = _at(clock, [6.0, 7.0, 8.0, 9.0, 10.0])
    ev = evaluate(rule, series, now=now)
    assert ev.verdict is Verdict.BREACHING
    assert (ev.breaches, ev.datapoints, ev.breach_duration_s) == (5, 5, 300.0)

    series, now = _at(clock, [6.0, 7.0, 4.0, 9.0, 10.0])
    ev = evaluate(rule, series, now=now)
    assert ev.verdict is Verdict.OK
    assert "4 of 5 periods breach" in ev.reason


def test_first_breaching_verdict_comes_exactly_when_the_window_has_passed_rb1() -> None:
    """A 5-minute rule fed minute by minute on a virtual clock turns at +5 min, not before."""
    for rule in (
        _rule(missing_data=MissingData.NOT_BREACHING),
        # CloudWatch's "missing" judges a young series on the datapoints it has; the breach
        # duration holds the verdict back to the full five minutes.
        _rule(missing_data=MissingData.MISSING, breach_duration_s=300.0),
    ):
        clock = VirtualClock()
        t0 = clock.now()
        points: list[Datapoint] = []
        verdicts: dict[int, Verdict] = {}
        for minute in range(1, 8):
            points.append(Datapoint(timestamp=t0 + (minute - 1) * MIN, value=12.0))
            clock.advance(60)
            verdicts[minute] = evaluate(rule, points, now=clock.now()).verdict
        assert [m for m, v in verdicts.items() if v is Verdict.BREACHING] == [5, 6, 7]


def test_missing_treatment_judges_a_young_series_on_what_it_has_mon1() -> None:
    clock = VirtualClock()
    series, now = _at(clock, [12.0])
    assert evaluate(_rule(), series, now=now).verdict is Verdict.BREACHING
    assert evaluate(_rule(missing_data=MissingData.NOT_BREACHING), series, now=now).verdict is (
        Verdict.OK
    )


def test_m_of_n_datapoints_to_alarm_mon1() -> None:
    clock = VirtualClock()
    rule = _rule(evaluation_periods=5, datapoints_to_alarm=3)
    for values, expected in [
        ([9.0, 1.0, 9.0, 1.0, 9.0], Verdict.BREACHING),
        ([9.0, 1.0, 1.0, 9.0, 9.0], Verdict.BREACHING),
        ([9.0, 1.0, 1.0, 1.0, 9.0], Verdict.OK),
        # the breach six minutes ago is outside the window
        ([9.0, 9.0, 1.0, 1.0, 1.0, 9.0], Verdict.OK),
    ]:
        series, now = _at(clock, values)
        assert evaluate(rule, series, now=now).verdict is expected, values


# CloudWatch's documented table for 5 evaluation periods, 3 datapoints to alarm
# ("-" missing, "X" breaching, "0" good), listed oldest first.
_CW = {
    "0-X-X": (Verdict.OK, Verdict.OK, Verdict.BREACHING, Verdict.OK),
    "----0": (Verdict.OK, Verdict.OK, Verdict.BREACHING, Verdict.OK),
    "-----": (
        Verdict.INSUFFICIENT_DATA,
        Verdict.INSUFFICIENT_DATA,
        Verdict.BREACHING,
        Verdict.OK,
    ),
    "0XX-X": (Verdict.BREACHING, Verdict.BREACHING, Verdict.BREACHING, Verdict.BREACHING),
    "--X--": (Verdict.BREACHING, Verdict.INSUFFICIENT_DATA, Verdict.BREACHING, Verdict.OK),
}


@pytest.mark.parametrize("pattern", sorted(_CW))
def test_missing_data_treatments_follow_cloudwatch_mon1(pattern: str) -> None:
    clock = VirtualClock()
    treatments = (
        MissingData.MISSING,
        MissingData.IGNORE,
        MissingData.BREACHING,
        MissingData.NOT_BREACHING,
    )
    values: list[float | None] = [{"-": None, "X": 9.0, "0": 1.0}[c] for c in pattern]
    series, now = _at(clock, values)
    got = tuple(
        evaluate(_rule(datapoints_to_alarm=3, missing_data=t), series, now=now).verdict
        for t in treatments
    )
    assert got == _CW[pattern]


def test_ignore_leaves_the_decision_to_the_previous_state_when_nothing_is_known() -> None:
    clock = VirtualClock()
    series, now = _at(clock, [None, None, None, None, None])
    ignore = evaluate(_rule(missing_data=MissingData.IGNORE), series, now=now)
    missing = evaluate(_rule(missing_data=MissingData.MISSING), series, now=now)
    assert (ignore.verdict, ignore.retain) == (Verdict.INSUFFICIENT_DATA, True)
    assert (missing.verdict, missing.retain) == (Verdict.INSUFFICIENT_DATA, False)
    assert "no data in the last 5 periods" in missing.reason


def test_a_quiet_service_is_not_judged_on_three_requests_rb1() -> None:
    """1 failed request of 3 is 33 % errors; with min_samples it is not a verdict."""
    clock = VirtualClock()
    rule = _rule(min_samples=20, missing_data=MissingData.NOT_BREACHING)
    quiet, now = _at(clock, [33.3] * 5, samples=3)
    ev = evaluate(rule, quiet, now=now)
    assert ev.verdict is Verdict.INSUFFICIENT_DATA
    assert "too little traffic" in ev.reason
    assert {p.state for p in ev.periods} == {PeriodState.QUIET}

    busy, now = _at(clock, [33.3] * 5, samples=300)
    assert evaluate(rule, busy, now=now).verdict is Verdict.BREACHING


def test_quiet_periods_are_never_filled_as_breaching() -> None:
    clock = VirtualClock()
    rule = _rule(min_samples=20, missing_data=MissingData.BREACHING)
    points = [
        Datapoint(timestamp=clock.now() - (i + 1) * MIN, value=50.0, samples=2) for i in range(4)
    ]
    points.append(Datapoint(timestamp=clock.now() - 5 * MIN, value=50.0, samples=500))
    ev = evaluate(rule, points, now=clock.now())
    assert ev.verdict is Verdict.INSUFFICIENT_DATA
    assert ev.datapoints == 1


def test_consecutive_breach_duration_is_required_on_top_of_m_of_n() -> None:
    clock = VirtualClock()
    rule = _rule(evaluation_periods=1, breach_duration_s=180.0)
    series, now = _at(clock, [1.0, 9.0, 9.0])
    ev = evaluate(rule, series, now=now)
    assert ev.verdict is Verdict.OK
    assert ev.breach_duration_s == 120.0
    assert "not yet the required 180s" in ev.reason
    series, now = _at(clock, [9.0, 9.0, 9.0])
    assert evaluate(rule, series, now=now).verdict is Verdict.BREACHING


def test_escalation_warns_first_then_breaches_when_the_breach_lasts_rb1() -> None:
    """P99 > 1000 ms: warning after 3 minutes, breaching once it has lasted 10."""
    clock = VirtualClock()
    t0 = clock.now()
    rule = _rule(
        metric=MetricName.RESPONSE_TIME,
        statistic=Statistic.P99,
        threshold=1000.0,
        evaluation_periods=3,
        escalate_after_s=600.0,
        missing_data=MissingData.NOT_BREACHING,
    )
    points: list[Datapoint] = []
    seen: list[Verdict] = []
    for minute in range(12):
        points.append(Datapoint(timestamp=t0 + minute * MIN, value=1500.0))
        clock.advance(60)
        seen.append(evaluate(rule, points, now=clock.now()).verdict)
    assert seen[:2] == [Verdict.OK, Verdict.OK]
    assert seen[2:9] == [Verdict.WARNING] * 7
    assert seen[9:] == [Verdict.BREACHING] * 3
    ev = evaluate(rule, points, now=clock.now())
    assert ev.breach_duration_s == 600.0  # measured as far back as the lookback reaches
    # a good minute resets the run: warning again, not breaching
    points.append(Datapoint(timestamp=t0 + 12 * MIN, value=200.0))
    for minute in range(13, 16):
        points.append(Datapoint(timestamp=t0 + minute * MIN, value=1500.0))
    clock.advance(4 * 60)
    assert evaluate(rule, points, now=clock.now()).verdict is Verdict.WARNING


def test_consecutive_query_errors_are_their_own_verdict() -> None:
    clock = VirtualClock()
    now = clock.now()
    query = MetricQuery(
        metric=MetricName.ERROR_RATE,
        scope="web",
        statistic=Statistic.AVERAGE,
        start=now - 5 * MIN,
        end=now,
    )
    good = Measurement(
        query=query,
        datapoints=tuple(
            Datapoint(timestamp=now - (i + 1) * MIN, value=9.0, samples=100) for i in range(5)
        ),
    )
    bad = Measurement(query=query, error="metrics backend timed out")
    rule = _rule(max_query_errors=3)

    two = Series.from_measurements([good, bad, bad])
    ev = evaluate(rule, two, now=now)
    assert ev.verdict is Verdict.BREACHING  # judged on the last good data
    assert ev.query_errors == 2

    three = Series.from_measurements([good, bad, bad, bad])
    ev = evaluate(rule, three, now=now)
    assert ev.verdict is Verdict.QUERY_ERROR
    assert "3 consecutive metric queries failed" in ev.reason
    assert "metrics backend timed out" in ev.reason

    recovered = Series.from_measurements([bad, bad, bad, good])
    assert evaluate(rule, recovered, now=now).verdict is Verdict.BREACHING


def test_several_datapoints_in_one_period_combine_with_the_statistic() -> None:
    clock = VirtualClock()
    now = clock.now()
    # two 30-second samples in the last minute
    a = Datapoint(timestamp=now - timedelta(seconds=60), value=8.0, samples=10)
    b = Datapoint(timestamp=now - timedelta(seconds=30), value=2.0, samples=90)
    one = dict(evaluation_periods=1)
    avg = evaluate(_rule(**one), [a, b], now=now)
    assert avg.periods[-1].value == pytest.approx(2.6)  # weighted by requests
    assert avg.verdict is Verdict.OK
    total = evaluate(
        _rule(metric=MetricName.HTTP_5XX, statistic=Statistic.SUM, threshold=9.0, **one),
        [a, b],
        now=now,
    )
    assert total.periods[-1].value == 10.0
    assert total.verdict is Verdict.BREACHING
    worst = evaluate(_rule(statistic=Statistic.P99, **one), [a, b], now=now)
    assert worst.periods[-1].value == 8.0


def test_datapoints_at_or_after_now_are_not_judged() -> None:
    clock = VirtualClock()
    now = clock.now()
    future = [Datapoint(timestamp=now, value=99.0), Datapoint(timestamp=now + MIN, value=99.0)]
    ev = evaluate(_rule(evaluation_periods=1), future, now=now)
    assert ev.verdict is Verdict.INSUFFICIENT_DATA


def test_results_are_values_and_evidence_is_json() -> None:
    clock = VirtualClock()
    series, now = _at(clock, [6.0, 7.0, 8.0, 9.0, 10.0], samples=100)
    first = evaluate(_rule(), series, now=now)
    assert first == evaluate(_rule(), series, now=now)
    evidence = json.loads(json.dumps(first.evidence()))
    assert evidence["verdict"] == "breaching"
    assert evidence["rule"]["threshold"] == 5.0
    assert evidence["rule"]["comparison"] == ">"
    assert [p["value"] for p in evidence["periods"]] == [6.0, 7.0, 8.0, 9.0, 10.0]
    assert evidence["condition"] == "ErrorRate Average > 5 in 5 of 5 periods of 60s"


def test_lookback_covers_the_longest_duration() -> None:
    rule = _rule(evaluation_periods=3, escalate_after_s=600.0)
    assert (rule.lookback_periods, rule.lookback_s) == (10, 600.0)
    assert _rule().lookback_s == 300.0


def test_valid_rule_has_no_issues() -> None:
    assert validate_rule(_rule(datapoints_to_alarm=3, min_samples=20), "rules.errors") == []


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        ({"threshold": 150.0}, "rules.x.threshold", "percentage"),
        ({"comparison": Comparison.GT, "threshold": 100.0}, "rules.x.threshold", "never"),
        ({"comparison": Comparison.LT, "threshold": 0.0}, "rules.x.threshold", "never"),
        ({"threshold": float("nan")}, "rules.x.threshold", "finite"),
        (
            {"metric": MetricName.RESPONSE_TIME, "threshold": -1.0},
            "rules.x.threshold",
            "never negative",
        ),
        ({"period_s": 0}, "rules.x.period_s", "more than 0"),
        ({"evaluation_periods": 0}, "rules.x.evaluation_periods", "at least 1"),
        ({"datapoints_to_alarm": 6}, "rules.x.datapoints_to_alarm", "cannot exceed N"),
        ({"datapoints_to_alarm": 0}, "rules.x.datapoints_to_alarm", "between 1"),
        ({"breach_duration_s": -5.0}, "rules.x.breach_duration_s", "0 or more"),
        ({"escalate_after_s": 300.0}, "rules.x.escalate_after_s", "longer than the window"),
        (
            {"escalate_after_s": 600.0, "breach_duration_s": 900.0},
            "rules.x.breach_duration_s",
            "warning could never come first",
        ),
        ({"min_samples": -1}, "rules.x.min_samples", "0"),
        ({"max_query_errors": 0}, "rules.x.max_query_errors", "at least 1"),
        ({"name": " "}, "rules.x.name", "needs a name"),
    ],
)
def test_impossible_windows_and_thresholds_are_reported_with_paths(
    changes: dict[str, object], path: str, words: str
) -> None:
    issues = validate_rule(_rule(**changes), "rules.x")
    assert [p for p, _ in issues] == [path]
    assert words in issues[0][1]
