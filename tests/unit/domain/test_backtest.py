"""The pure replay of stored windows (issue 19, part 4): series from windows, the judge over
canary windows of both colours, and the words for the difference from what happened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deployops.domain.backtest import (
    Change,
    ObservedWindow,
    Outcome,
    colour_window,
    compare,
    judged_outcome,
    period_start,
    replay_judge,
    replay_rules,
    series_for,
)
from deployops.domain.judge import JudgePolicy, JudgeVerdict
from deployops.domain.model import MetricName, Statistic
from deployops.domain.policy import RollbackPolicy, default_rollback_rules
from deployops.domain.rules import Comparison, Rule
from deployops.domain.sketch import LatencySketch

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def win(
    minute: int,
    requests: int = 100,
    errors: int = 0,
    *,
    latency_ms: tuple[float, ...] = (),
    source: str = "observe",
    stats: dict[str, object] | None = None,
) -> ObservedWindow:
    sketch = None
    if latency_ms:
        sketch = LatencySketch()
        for v in latency_ms:
            sketch.add(v)
    start = T0 + timedelta(minutes=minute)
    return ObservedWindow(
        start=start,
        end=start + timedelta(minutes=1),
        requests=requests,
        errors=errors,
        latency=sketch,
        stats=stats or {},
        source=source,
    )


def test_series_for_aggregates_windows_into_the_rules_periods() -> None:
    rule = Rule(
        name="e",
        metric=MetricName.ERROR_RATE,
        statistic=Statistic.AVERAGE,
        comparison=Comparison.GT,
        threshold=5,
        period_s=120,
    )
    s = series_for(rule, [win(0, 100, 10), win(1, 300, 10), win(2, 100, 0)])
    assert [(d.timestamp, d.value, d.samples) for d in s.datapoints] == [
        (T0, 5.0, 400),
        (T0 + timedelta(minutes=2), 0.0, 100),
    ]
    p99 = Rule(
        name="p",
        metric=MetricName.RESPONSE_TIME,
        statistic=Statistic.P99,
        comparison=Comparison.GT,
        threshold=1000,
    )
    merged = series_for(p99, [win(0, latency_ms=(10.0,) * 98 + (900.0, 900.0))])
    assert merged.datapoints[0].value == pytest.approx(900.0, rel=0.02)
    kept = series_for(p99, [win(0, stats={"latency_ms": {"p99": 1500.0}})])
    assert kept.datapoints[0].value == 1500.0
    cpu = Rule(
        name="c",
        metric=MetricName.CPU,
        statistic=Statistic.AVERAGE,
        comparison=Comparison.GT,
        threshold=85,
    )
    gauge = series_for(cpu, [win(0, stats={"CPUUtilization": {"Average": 91.0}})])
    assert gauge.datapoints[0].value == 91.0
    assert period_start(T0 + timedelta(seconds=75), 60) == T0 + timedelta(minutes=1)


def test_replayed_rules_roll_back_when_the_window_is_satisfied() -> None:
    policy = RollbackPolicy(rules=default_rollback_rules())
    bad = [win(k, 100, 20) for k in range(6)]
    replay = replay_rules(policy, bad, since=T0)
    assert replay.rollback_at == T0 + timedelta(minutes=5)
    assert replay.rule == "error-rate"
    # The previous version breached the same way before the switch: not this release.
    before = [win(-k, 100, 20) for k in range(1, 6)]
    blamed = replay_rules(policy, bad, before, since=T0)
    assert blamed.rollback_at is None
    assert any(action == "notify" for _, _, action in blamed.actions)


def test_the_judge_replays_each_canary_step_where_both_colours_have_windows() -> None:
    same = (50.0, 60.0, 70.0, 80.0, 90.0) * 40
    new = [
        win(0, 500, 1, latency_ms=same, source="canary step 1 (5 %)"),
        win(1, 500, 15, latency_ms=same, source="canary step 2 (25 %)"),
        win(2, 500, 0, source="observe"),
    ]
    old = [
        win(0, 500, 1, latency_ms=same, source="canary step 1 (5 %)"),
        win(1, 500, 1, latency_ms=same, source="canary step 2 (25 %)"),
        win(2, 500, 0, source="observe"),
    ]
    replays = replay_judge(JudgePolicy(), new, old)
    assert [(r.source, r.judgement.verdict) for r in replays] == [
        ("canary step 1 (5 %)", JudgeVerdict.PASS),
        ("canary step 2 (25 %)", JudgeVerdict.FAIL),
    ]
    outcome, stopper = judged_outcome(replays)
    assert outcome is Outcome.ROLLBACK
    assert stopper is not None and stopper.at == T0 + timedelta(minutes=2)


def test_colour_window_from_windows_sums_and_keeps_the_distribution() -> None:
    w = colour_window([win(0, 10, 1, latency_ms=(100.0,) * 10), win(1, 10, 0)])
    assert (w.requests, w.errors) == (20, 1)
    assert len(w.latencies) == 10
    assert w.latencies[0] == pytest.approx(0.1, rel=0.02)


@pytest.mark.parametrize(
    ("happened", "would", "change"),
    [
        (None, None, Change.SAME),
        (None, 120, Change.FALSE_ROLLBACK),
        (300, None, Change.MISS),
        (300, 120, Change.EARLIER),
        (120, 300, Change.LATER),
        (300, 330, Change.SAME),
    ],
)
def test_compare_words(happened: int | None, would: int | None, change: Change) -> None:
    def at(s: int | None) -> datetime | None:
        return None if s is None else T0 + timedelta(seconds=s)

    assert compare(rolled_back_at=at(happened), would_at=at(would)) is change
