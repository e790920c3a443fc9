"""The latency sketch behind p50/p90/p99 (metrics requirement: percentiles from a mergeable
sketch, not from averages; RB-1 P99 rules and CHK-2 P99 < 500 ms read it)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deployops.domain.sketch import LatencySketch

ALPHA = 0.01

latencies = st.lists(
    st.floats(min_value=0.0, max_value=1e9, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=300,
)
quantiles = st.floats(min_value=0.0, max_value=1.0)


def _exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def _sketch(values: list[float]) -> LatencySketch:
    s = LatencySketch(ALPHA)
    for v in values:
        s.add(v)
    return s


@settings(max_examples=300, deadline=None)
@given(values=latencies, q=quantiles)
def test_quantile_is_within_relative_accuracy_of_exact_quantile_for_rb1_p99(
    values: list[float], q: float
) -> None:
    exact = _exact(values, q)
    got = _sketch(values).quantile(q)
    assert abs(got - exact) <= ALPHA * exact + 1e-9


@settings(max_examples=200, deadline=None)
@given(a=latencies, b=latencies)
def test_merge_equals_sketch_of_concatenation(a: list[float], b: list[float]) -> None:
    merged = _sketch(a)
    merged.merge(_sketch(b))
    assert merged == _sketch(a + b)
    assert merged.count == len(a) + len(b)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.floats(min_value=0.0, max_value=1e9), max_size=200))
def test_json_round_trip_keeps_every_answer(values: list[float]) -> None:
    s = _sketch(values)
    back = LatencySketch.from_json(s.to_json())
    assert back == s
    if values:
        assert back.quantile(0.99) == s.quantile(0.99)
        assert back.min == min(values)
        assert back.max == max(values)


def test_json_is_compact_for_a_realistic_latency_distribution() -> None:
    s = LatencySketch()
    for i in range(100_000):
        s.add(5.0 + (i % 997) * 0.3, 1)  # 5 ms .. 304 ms
    assert s.count == 100_000
    assert len(s.to_json()) < 2500
    assert s.quantile(0.5) == pytest.approx(
        _exact([5.0 + (i % 997) * 0.3 for i in range(997)], 0.5), rel=ALPHA
    )


def test_add_with_count_equals_repeated_add() -> None:
    once = LatencySketch()
    once.add(42.0, count=7)
    repeated = _sketch([42.0] * 7)
    assert once == repeated
    assert once.quantile(0.99) == pytest.approx(42.0, rel=ALPHA)


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_refuses_values_that_are_not_latencies(bad: float) -> None:
    with pytest.raises(ValueError, match="finite values >= 0"):
        LatencySketch().add(bad)


def test_empty_sketch_has_no_quantile_and_says_so() -> None:
    with pytest.raises(ValueError, match="empty sketch"):
        LatencySketch().quantile(0.5)


def test_merging_different_accuracies_is_refused() -> None:
    with pytest.raises(ValueError, match="relative accuracy"):
        LatencySketch(0.01).merge(LatencySketch(0.02))


@pytest.mark.parametrize("text", ["", "{}", '{"a":0.01,"z":0,"k":[1],"c":[]}', "[1,2]"])
def test_from_json_rejects_what_is_not_a_sketch(text: str) -> None:
    with pytest.raises(ValueError, match="not a latency sketch"):
        LatencySketch.from_json(text)
