"""Target-tracking math (IAC-5, IAC-3): formula, tolerance band, bounds, separate cooldowns."""

from __future__ import annotations

import doctest
import itertools
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from deployops.clock import VirtualClock
from deployops.domain import scaling
from deployops.domain.scaling import (
    DEFAULT_SCALING_POLICY,
    ScalingDecision,
    ScalingPolicy,
    decide,
    validate,
)

P = DEFAULT_SCALING_POLICY


def test_docstring_examples_hold() -> None:
    assert doctest.testmod(scaling).failed == 0


def test_defaults_are_the_guides_numbers_iac5() -> None:
    assert (P.target, P.min_capacity, P.max_capacity, P.period_s) == (70.0, 2, 10, 60)
    assert (P.scale_out_cooldown_s, P.scale_in_cooldown_s) == (300.0, 300.0)
    assert validate(P) == []


@pytest.mark.parametrize(
    ("current", "cpu", "desired"),
    [
        (2, 95.0, 3),  # ceil(2 × 95 / 70) = ceil(2.71)
        (4, 90.0, 6),  # ceil(5.14)
        (4, 140.0, 8),
        (8, 100.0, 10),  # ceil(11.4) capped at the maximum
        (4, 77.0, 4),  # within 10 % of the target: no change
        (4, 63.0, 4),
        (4, 78.0, 5),  # just outside the band
        (6, 30.0, 4),  # ceil(2.57) = 3, but scale-in removes at most 2 at once
        (3, 20.0, 2),  # never below the minimum
        (2, 5.0, 2),
        (10, 100.0, 10),
    ],
)
def test_desired_is_ceil_current_times_metric_over_target_iac5(
    current: int, cpu: float, desired: int
) -> None:
    now = VirtualClock().now()
    assert decide(current, cpu, None, None, now, P).desired == desired


def test_reasons_say_what_and_why() -> None:
    now = VirtualClock().now()
    assert decide(2, 95.0, None, None, now, P) == ScalingDecision(
        3, "CPUUtilization 95 above target 70: scale out 2 → 3"
    )
    assert decide(10, 100.0, None, None, now, P) == ScalingDecision(
        10, "CPUUtilization 100 above target 70 at maximum 10"
    )
    assert decide(4, 72.0, None, None, now, P) == ScalingDecision(
        4, "CPUUtilization 72 within 10% of target 70: keep 4"
    )
    assert decide(4, None, None, None, now, P) == ScalingDecision(
        4, "no CPUUtilization datapoint: keep 4"
    )


def test_capacity_outside_bounds_is_corrected_even_in_cooldown_iac3() -> None:
    now = VirtualClock().now()
    assert decide(1, 10.0, now, now, now, P).desired == 2
    assert decide(12, 95.0, now, now, now, P).desired == 10


def test_scale_out_cooldown_runs_from_the_last_scale_out_only_iac5() -> None:
    now = VirtualClock().now()
    recent = now - timedelta(seconds=120)
    held = decide(4, 95.0, recent, None, now, P)
    assert held == ScalingDecision(
        4, "CPUUtilization 95 above target 70, scale-out cooldown: 180s left"
    )
    # a recent scale-in does not delay a scale-out
    assert decide(4, 95.0, None, recent, now, P).desired == 6
    assert decide(4, 95.0, now - timedelta(seconds=300), None, now, P).desired == 6


def test_scale_in_is_cautious_cooldown_from_any_activity_iac5() -> None:
    now = VirtualClock().now()
    recent = now - timedelta(seconds=200)
    assert decide(6, 30.0, recent, None, now, P).desired == 6  # just scaled out: keep it
    assert decide(6, 30.0, None, recent, now, P).desired == 6
    long_ago = now - timedelta(seconds=301)
    assert decide(6, 30.0, long_ago, long_ago, now, P).desired == 4


def test_separate_cooldowns_are_configurable() -> None:
    now = VirtualClock().now()
    quick = replace(P, scale_out_cooldown_s=60.0, scale_in_cooldown_s=900.0)
    ago = now - timedelta(seconds=120)
    assert decide(4, 95.0, ago, None, now, quick).desired == 6
    assert decide(6, 30.0, None, ago, now, quick).desired == 6


def test_follows_a_cpu_series_from_2_to_10_and_back_honouring_cooldowns_iac5() -> None:
    """Load rises until 10 tasks are needed, holds, then falls; one decision a minute."""
    clock = VirtualClock()
    # total demand in "percent of one task": cpu = demand / tasks
    demand = [120.0] * 5 + [i * 60.0 for i in range(2, 16)] + [900.0] * 20 + [100.0] * 60
    current = 2
    last_out: datetime | None = None
    last_in: datetime | None = None
    history: list[tuple[datetime, int, int]] = []
    for load in demand:
        now = clock.now()
        d = decide(current, min(100.0, load / current), last_out, last_in, now, P)
        if d.desired > current:
            assert last_out is None or (now - last_out).total_seconds() >= 300
            last_out = now
        elif d.desired < current:
            for t in (last_out, last_in):
                assert t is None or (now - t).total_seconds() >= 300
            assert current - d.desired <= P.scale_in_max_step
            last_in = now
        if d.desired != current:
            history.append((now, current, d.desired))
        current = d.desired
        assert P.min_capacity <= current <= P.max_capacity
        clock.advance(60)
    counts = [h[2] for h in history]
    assert max(counts) == 10
    assert counts[-1] == 2
    peak = counts.index(10)
    assert counts[: peak + 1] == sorted(counts[: peak + 1])  # only up on the way up
    assert counts[peak:] == sorted(counts[peak:], reverse=True)  # only down on the way down
    gaps = [(b[0] - a[0]).total_seconds() for a, b in itertools.pairwise(history)]
    assert min(gaps) >= 300


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"min_capacity": 0}, "scaling.min_capacity"),
        ({"max_capacity": 1}, "scaling.max_capacity"),
        ({"target": 0.0}, "scaling.target"),
        ({"target": 120.0}, "scaling.target"),
        ({"period_s": 0}, "scaling.period_s"),
        ({"scale_out_cooldown_s": -1.0}, "scaling.scale_out_cooldown_s"),
        ({"scale_in_cooldown_s": -1.0}, "scaling.scale_in_cooldown_s"),
        ({"tolerance": 1.0}, "scaling.tolerance"),
        ({"scale_in_max_step": 0}, "scaling.scale_in_max_step"),
    ],
)
def test_impossible_scaling_settings_are_reported_with_paths(
    changes: dict[str, object], path: str
) -> None:
    issues = validate(replace(P, **changes))  # type: ignore[arg-type]
    assert [p for p, _ in issues] == [path]


def test_a_custom_policy_is_just_a_value() -> None:
    now = VirtualClock().now()
    memory = ScalingPolicy(target=60.0, min_capacity=1, max_capacity=3, tolerance=0.0)
    assert decide(1, 61.0, None, None, now, memory).desired == 2
