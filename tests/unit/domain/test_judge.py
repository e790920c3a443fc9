"""The statistical judge (issue 19, part 3): canary against baseline over the same window."""

from __future__ import annotations

import doctest
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deployops.domain.judge as judge_module
from deployops.domain.judge import (
    ColourWindow,
    Direction,
    Judgement,
    JudgeMetric,
    JudgePolicy,
    JudgeVerdict,
    MetricOutcome,
    MetricPolicy,
    judge,
    validate_judge_policy,
)

POLICY = JudgePolicy()


def window(
    seed: int,
    *,
    requests: int = 500,
    error_rate: float = 0.002,
    median_s: float = 0.1,
    sigma: float = 0.6,
) -> ColourWindow:
    """A generated window: binomial errors, log-normal latencies (a long right tail)."""
    rng = np.random.default_rng(seed)
    errors = int(rng.binomial(requests, error_rate))
    latencies = tuple(float(v) for v in rng.lognormal(np.log(median_s), sigma, requests))
    return ColourWindow(requests, errors, latencies)


def test_doctests() -> None:
    assert doctest.testmod(judge_module).failed == 0


def test_three_percent_errors_against_a_clean_baseline_fails_on_500_requests() -> None:
    """RB-1 canary: 3 % vs 0.2 % errors with ~500 requests per side fails (critical metric)."""
    base = window(1)
    base = replace(base, errors=1)
    canary = replace(window(2), errors=15)
    result = judge(base, canary, POLICY)
    assert result.verdict is JudgeVerdict.FAIL
    err = result.metric("error_rate")
    assert err.outcome is MetricOutcome.FAIL
    assert err.p_value is not None
    assert err.p_value < 0.02
    assert err.reason.startswith("error rate 3.0 % vs 0.2 % (p=")
    assert "+2.8 pp ≥ floor 1 pp" in err.reason
    assert result.reason.startswith("critical metric failed: error_rate")


def test_same_error_rate_on_both_a_noisy_baseline_passes() -> None:
    base = replace(window(3), errors=15)
    canary = replace(window(4), errors=15)
    result = judge(base, canary, POLICY)
    assert result.verdict is JudgeVerdict.PASS, result.reason
    assert result.score == 100.0
    assert "not significant at 98 %" in result.metric("error_rate").reason


def test_p99_doubled_fails_by_mann_whitney() -> None:
    base = window(5, median_s=0.1)
    canary = window(6, median_s=0.2)  # the whole distribution × 2: P99 doubles
    result = judge(base, canary, POLICY)
    lat = result.metric("latency")
    assert lat.canary["p99"] > 1.7 * lat.baseline["p99"]
    assert lat.outcome is MetricOutcome.FAIL
    assert "Mann–Whitney p<0.0001" in lat.reason
    assert result.verdict is JudgeVerdict.FAIL
    assert result.score < POLICY.marginal_score


def test_canary_better_passes_the_direction_is_respected() -> None:
    base = replace(window(7, median_s=0.2, sigma=0.9), errors=25)
    canary = replace(window(8, median_s=0.1, sigma=0.3), errors=0)
    result = judge(base, canary, POLICY)
    assert result.verdict is JudgeVerdict.PASS, result.reason
    # The same change judged "lower is worse" fails.
    lower_is_bad = JudgePolicy(
        metrics=tuple(replace(m, direction=Direction.DECREASE) for m in POLICY.metrics)
    )
    assert judge(base, canary, lower_is_bad).verdict is JudgeVerdict.FAIL


def test_either_direction_catches_a_change_both_ways() -> None:
    policy = JudgePolicy(
        metrics=(
            MetricPolicy(
                metric=JudgeMetric.LATENCY, direction=Direction.EITHER, min_effect_relative=0.1
            ),
        )
    )
    slow, fast = window(9, median_s=0.2), window(10, median_s=0.1)
    assert judge(fast, slow, policy).verdict is JudgeVerdict.FAIL
    assert judge(slow, fast, policy).verdict is JudgeVerdict.FAIL


def test_below_the_minimum_sample_is_no_data_and_never_passes() -> None:
    base = window(11)
    few = window(12, requests=30)
    result = judge(base, few, POLICY)
    assert result.verdict is JudgeVerdict.MARGINAL
    assert {m.name for m in result.no_data} == {"error_rate", "latency", "latency_spread"}
    assert result.metric("error_rate").reason == (
        "error rate: not enough samples (canary 30 requests, baseline 500, minimum 100 per colour)"
    )
    assert "marginal at best" in result.reason


def test_one_metric_without_data_caps_an_otherwise_perfect_score_at_marginal() -> None:
    base = ColourWindow(500, 1, window(13).latencies[:40])
    canary = ColourWindow(500, 1, window(14).latencies[:40])
    policy = JudgePolicy(
        metrics=(
            MetricPolicy(metric=JudgeMetric.ERROR_RATE, min_samples=100, min_effect_absolute=1.0),
            MetricPolicy(metric=JudgeMetric.LATENCY, min_samples=50),
        )
    )
    result = judge(base, canary, policy)
    assert result.score == 100.0
    assert result.verdict is JudgeVerdict.MARGINAL
    assert "not enough samples for latency: marginal at best" in result.reason
    assert judge(base, canary, replace(policy, no_data_passes=True)).verdict is JudgeVerdict.PASS


def test_a_significant_change_below_the_effect_floor_passes() -> None:
    base = ColourWindow(200_000, 400, ())  # 0.2 %
    canary = ColourWindow(200_000, 800, ())  # 0.4 %: certain, but +0.2 pp
    policy = JudgePolicy(
        metrics=(
            MetricPolicy(metric=JudgeMetric.ERROR_RATE, min_effect_absolute=1.0, critical=True),
        )
    )
    err = judge(base, canary, policy).metric("error_rate")
    assert err.p_value is not None
    assert err.p_value < 0.0001
    assert err.outcome is MetricOutcome.PASS
    assert err.reason.endswith("+0.2 pp < floor 1 pp: too small to matter)")
    # Without a floor the same change fails.
    no_floor = JudgePolicy(metrics=(MetricPolicy(metric=JudgeMetric.ERROR_RATE),))
    assert judge(base, canary, no_floor).verdict is JudgeVerdict.FAIL


def test_relative_and_absolute_floors_must_both_be_reached() -> None:
    base, canary = ColourWindow(5000, 50, ()), ColourWindow(5000, 120, ())  # 1 % -> 2.4 %
    both = MetricPolicy(
        metric=JudgeMetric.ERROR_RATE, min_effect_absolute=1.0, min_effect_relative=2.0
    )
    result = judge(base, canary, JudgePolicy(metrics=(both,)))
    assert result.verdict is JudgeVerdict.PASS  # +1.4 pp but +140 % < 200 %
    assert "< floor 200 %" in result.metric("error_rate").reason
    loose = replace(both, min_effect_relative=1.0)
    assert judge(base, canary, JudgePolicy(metrics=(loose,))).verdict is JudgeVerdict.FAIL


def test_a_critical_metric_fails_the_judgement_whatever_the_score() -> None:
    base, canary = window(15, median_s=0.1), window(16, median_s=0.2)
    metrics = [
        replace(m, weight=0.01) if m.metric is JudgeMetric.LATENCY else m for m in POLICY.metrics
    ]
    light = JudgePolicy(metrics=tuple(metrics))
    spread_ok = [m for m in metrics if m.metric is not JudgeMetric.LATENCY_SPREAD]
    not_critical = judge(base, canary, JudgePolicy(metrics=tuple(spread_ok)))
    assert not_critical.score > 99
    assert not_critical.verdict is JudgeVerdict.PASS
    critical = JudgePolicy(
        metrics=tuple(replace(m, critical=m.metric is JudgeMetric.LATENCY) for m in spread_ok)
    )
    result = judge(base, canary, critical)
    assert result.verdict is JudgeVerdict.FAIL
    assert result.reason.startswith("critical metric failed: latency")
    assert judge(base, canary, light).metric("latency").outcome is MetricOutcome.FAIL


def test_spread_alone_wider_is_marginal_with_the_default_weights() -> None:
    rng = np.random.default_rng(17)
    base = ColourWindow(1000, 1, tuple(float(v) for v in rng.normal(0.2, 0.02, 1000)))
    canary = ColourWindow(1000, 1, tuple(float(v) for v in rng.normal(0.2, 0.06, 1000)))
    result = judge(base, canary, POLICY)
    assert result.metric("latency").outcome is MetricOutcome.PASS
    assert result.metric("latency_spread").outcome is MetricOutcome.FAIL
    assert result.score == 80.0
    assert result.verdict is JudgeVerdict.MARGINAL
    assert result.reason == "score 80 (pass ≥ 95, marginal ≥ 75); failed: latency_spread"


def test_constant_latencies_and_zero_errors_are_judged_without_warnings() -> None:
    same = ColourWindow(500, 0, (0.05,) * 500)
    result = judge(same, same, POLICY)
    assert result.verdict is JudgeVerdict.PASS
    assert all(m.p_value == 1.0 for m in result.metrics)


def test_judgement_round_trips_through_json_form() -> None:
    result = judge(window(18), replace(window(19), errors=20), POLICY)
    assert Judgement.from_dict(result.to_dict()) == result
    assert JudgePolicy.from_dict(POLICY.to_dict()) == POLICY


def test_colour_window_refuses_impossible_numbers() -> None:
    with pytest.raises(ValueError, match="errors out of"):
        ColourWindow(10, 11, ())
    with pytest.raises(ValueError, match="finite"):
        ColourWindow(10, 1, (float("nan"),))
    with pytest.raises(ValueError, match="0 or more"):
        ColourWindow(-1, 0, ())


def test_validate_policy_names_each_bad_key() -> None:
    bad = JudgePolicy(
        confidence=1.2,
        pass_score=70,
        marginal_score=80,
        metrics=(
            MetricPolicy(metric=JudgeMetric.LATENCY, min_samples=1, min_effect_relative=-0.1),
            MetricPolicy(metric=JudgeMetric.LATENCY, weight=-1),
        ),
    )
    paths = [p for p, _ in validate_judge_policy(bad)]
    assert paths == [
        "analysis.confidence",
        "analysis.marginal_score",
        "analysis.metrics.latency.min_samples",
        "analysis.metrics.latency.min_effect_relative",
        "analysis.metrics.latency",
        "analysis.metrics.latency.weight",
        "analysis.metrics",  # the weights add up to 0
    ]
    assert validate_judge_policy(POLICY) == []


# ---------------------------------------------------------------------------- properties


def test_same_distribution_false_fail_rate_is_low_over_many_seeds() -> None:
    """At 98 % confidence with effect floors, a release identical to its baseline fails rarely:
    at most 3 % of 200 seeded windows (measured: about 0.5 %)."""
    verdicts = Counter(judge(window(2 * s), window(2 * s + 1), POLICY).verdict for s in range(200))
    assert verdicts[JudgeVerdict.FAIL] <= 6, verdicts
    assert verdicts[JudgeVerdict.PASS] >= 180, verdicts


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rate=st.sampled_from([0.0, 0.002, 0.03]))
def test_property_an_identical_window_always_passes(seed: int, rate: float) -> None:
    w = window(seed, error_rate=rate)
    assert judge(w, w, POLICY).verdict is JudgeVerdict.PASS


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), factor=st.floats(0.3, 0.9))
def test_property_a_better_canary_never_fails_a_metric(seed: int, factor: float) -> None:
    """Direction respected: lower errors and every latency scaled down is never a failure."""
    base = window(seed, error_rate=0.03)
    canary = ColourWindow(
        base.requests,
        int(base.errors * factor),
        tuple(v * factor for v in base.latencies),
    )
    result = judge(base, canary, POLICY)
    assert not result.failed, result.reason
    assert result.verdict is JudgeVerdict.PASS


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    requests=st.integers(0, 49),
    errors=st.integers(0, 49),
)
def test_property_below_the_minimum_sample_is_never_a_pass(
    seed: int, requests: int, errors: int
) -> None:
    base = window(seed)
    small = window(seed + 1, requests=requests)
    small = replace(small, errors=min(errors, requests))
    result = judge(base, small, POLICY)
    assert result.verdict is not JudgeVerdict.PASS
    assert all(m.outcome is MetricOutcome.NO_DATA for m in result.metrics)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    canary_rate=st.floats(0.0, 0.1),
    scale=st.floats(0.5, 3.0),
)
def test_property_verdict_follows_score_and_critical_metrics(
    seed: int, canary_rate: float, scale: float
) -> None:
    base = window(seed)
    canary = window(seed + 1, error_rate=canary_rate, median_s=0.1 * scale)
    result = judge(base, canary, POLICY)
    assert 0.0 <= result.score <= 100.0
    if any(m.critical for m in result.failed):
        assert result.verdict is JudgeVerdict.FAIL
    elif result.score >= POLICY.pass_score:
        assert result.verdict is JudgeVerdict.PASS
    elif result.score >= POLICY.marginal_score:
        assert result.verdict is JudgeVerdict.MARGINAL
    else:
        assert result.verdict is JudgeVerdict.FAIL


def test_bad_releases_are_failed_in_nearly_every_seed() -> None:
    """The power side of the false-fail bound: over 100 seeded windows of 500 requests a
    side, 3 % vs 0.2 % errors fails in at least 90 (measured: about 96 %), and every latency
    doubled (P99 × 2) fails by Mann-Whitney in all of them."""
    errors = Counter(
        judge(window(2 * s), window(2 * s + 1, error_rate=0.03), POLICY).verdict for s in range(100)
    )
    assert errors[JudgeVerdict.FAIL] >= 90, errors
    slow = [judge(window(2 * s), window(2 * s + 1, median_s=0.2), POLICY) for s in range(100)]
    assert all(j.metric("latency").outcome is MetricOutcome.FAIL for j in slow)
