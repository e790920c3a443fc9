"""Verdicts on what happened (RB-1): latency periods with requests in flight and none
completed, and the evidence every evaluation states (how many requests, how many periods)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from deployops.domain.model import Datapoint, MetricName, Statistic
from deployops.domain.rules import (
    Comparison,
    MissingData,
    PeriodState,
    Rule,
    Series,
    Verdict,
    evaluate,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _p99(**kw: object) -> Rule:
    fields: dict[str, object] = {
        "name": "p99-latency",
        "metric": MetricName.RESPONSE_TIME,
        "statistic": Statistic.P99,
        "comparison": Comparison.GT,
        "threshold": 1000.0,
        "period_s": 1,
        "evaluation_periods": 3,
        "datapoints_to_alarm": 3,
        "missing_data": MissingData.NOT_BREACHING,
        "min_samples": 5,
    }
    fields.update(kw)
    return Rule(**fields)  # type: ignore[arg-type]


def _bursts(pattern: list[int | None], *, latency_ms: float, period_s: int = 1) -> Series:
    """One datapoint per period with that many completed requests (``None``: none completed)."""
    return Series(
        datapoints=tuple(
            Datapoint(T0 + timedelta(seconds=i * period_s), latency_ms, n)
            for i, n in enumerate(pattern)
            if n is not None
        )
    )


def test_a_release_slower_than_the_period_breaches_every_period_of_the_window_rb1() -> None:
    """1.5 s requests completing in bursts: two periods in three see completions. The third had
    the same requests in flight; it is a breaching period, not a good one."""
    series = _bursts([8, None, 8, 8, None, 8], latency_ms=1502.0)
    ev = evaluate(_p99(), series, now=T0 + timedelta(seconds=6))
    assert ev.verdict is Verdict.BREACHING, ev.reason
    flying = [p for p in ev.window if p.in_flight]
    assert len(flying) == 1 and flying[0].state is PeriodState.BREACH
    assert flying[0].observed == 0  # its requests are counted once, where they completed
    assert "period 2 of 3 had requests in flight and none completed" in ev.reason
    assert ev.basis() == "judged on 16 requests in 3 periods"


def test_a_gap_the_latency_does_not_reach_back_into_stays_a_gap_rb1() -> None:
    """200 ms requests cannot have been in flight a whole period earlier: a period without a
    completion is then silence, counted as the treatment says (good here)."""
    series = _bursts([8, None, 8], latency_ms=200.0)
    rule = _p99(threshold=100.0)
    ev = evaluate(rule, series, now=T0 + timedelta(seconds=3))
    assert not any(p.in_flight for p in ev.window)
    assert ev.verdict is Verdict.OK
    assert (
        ev.basis() == "judged on 16 requests in 2 periods (1 period without data counted as good)"
    )


def test_in_flight_reaches_back_as_many_periods_as_the_latency_covers_rb1() -> None:
    """A 2.5 s request completing in the newest 1 s period was in flight in the two before it."""
    series = _bursts([None, None, 6], latency_ms=2500.0)
    ev = evaluate(_p99(), series, now=T0 + timedelta(seconds=3))
    assert [p.in_flight for p in ev.window] == [True, True, False]
    assert ev.verdict is Verdict.BREACHING
    assert ev.judged_samples == 6


def test_error_rate_is_never_carried_back() -> None:
    rule = _p99(metric=MetricName.ERROR_RATE, statistic=Statistic.AVERAGE, threshold=5.0)
    series = _bursts([8, None, 8], latency_ms=2000.0)  # a 2000 % "error rate"
    ev = evaluate(rule, series, now=T0 + timedelta(seconds=3))
    assert not any(p.in_flight for p in ev.window)


def test_too_few_requests_say_how_many_and_the_minimum_rb1() -> None:
    series = _bursts([1, None, 1], latency_ms=1500.0)
    ev = evaluate(_p99(), series, now=T0 + timedelta(seconds=3))
    assert ev.verdict is Verdict.INSUFFICIENT_DATA
    assert ev.basis() == "not judged: 2 requests in 3 periods, minimum 5 per period"
    assert not ev.judged
    assert ev.evidence()["judged"] is False


def test_silence_is_not_judged_even_when_counted_as_good_rb1() -> None:
    ev = evaluate(_p99(), Series(), now=T0 + timedelta(seconds=3))
    assert not ev.judged
    assert ev.basis() == "not judged: no data in 3 periods of 1s"


def test_a_judged_window_states_its_requests_and_periods() -> None:
    series = _bursts([400, 420, 420], latency_ms=120.0)
    ev = evaluate(_p99(), series, now=T0 + timedelta(seconds=3))
    assert ev.verdict is Verdict.OK
    assert ev.judged
    assert ev.basis() == "judged on 1,240 requests in 3 periods"
    assert ev.evidence()["judged_samples"] == 1240
