"""Canary deployments under load on the real local platform (HAProxy's weighted split, the
collector's per-colour counts and latency sketches, the CLI): the comparison of the new
colour with the old at each step catches what the rollback rules' thresholds let through.

Each scenario runs once, with 3 s bakes (a step lasts until each colour served the requests
its comparison needs); ``bench/canary.py`` runs each at least 5 times with the judge's default
confidence and writes the counts into BENCHMARKS.md. ``make test`` samples the first (a
release failing 3 % caught at its first step); ``DEPLOYOPS_TEST_CANARY_LOAD=full`` runs all
four (each takes one to two minutes on 2 cores). The comparison here is
judged at 99.5 % confidence instead of 98 %, so a release as good as the old one is failed by
chance about once in 200 steps rather than once in 50.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.e2e.canary_support import canary_under_load

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.integration]

FULL = os.environ.get("DEPLOYOPS_TEST_CANARY_LOAD") == "full"
full_only = pytest.mark.skipif(
    not FULL, reason="sampled: DEPLOYOPS_TEST_CANARY_LOAD=full runs it (bench/canary.py too)"
)

# At a 5 % step the new colour sees few requests: 400 of them make a 3 % error rate visible
# (4 errors or more in 400: 99 % of the time), 100 would miss it one time in five.
ANALYSIS: dict[str, Any] = {
    "confidence": 0.995,
    "on_marginal": "continue",
    "metrics": {"error_rate": {"min_samples": 400}, "latency": {"min_samples": 200}},
}


# The latency comparisons need fewer requests: Mann-Whitney sees a doubled P99 in 100 of each.
LATENCY_ANALYSIS: dict[str, Any] = {
    **ANALYSIS,
    "metrics": {"error_rate": {"min_samples": 100}, "latency": {"min_samples": 100}},
}


def _comparisons(decisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in decisions if d.get("rule") == "canary-comparison"]


def test_release_failing_3_percent_is_caught_at_its_first_step() -> None:
    """A release failing 3 % of its requests over a clean baseline: below the rollback
    rules' 5 % threshold, but its comparison with the old colour at the 5 % step fails it;
    fewer than 10 % of all requests ever reached it, and every request is back on the old
    colour (exit 3, rolled back)."""
    run = canary_under_load("1.0.0", "8.3.0", steps=(5, 25, 50, 100), analysis=ANALYSIS)
    assert run.exit_code == 3, run.output[-3000:]
    assert (run.failed_step, run.failed_percent) == ("Bake", 5), run.output[-3000:]
    assert run.bakes_passed == []
    assert run.candidate_share < 0.10, (run.candidate_requests, run.total_requests)
    (decision,) = _comparisons(run.decisions)
    assert decision["action"] == "rollback"
    assert "error rate" in decision["verdict"]


@full_only
def test_same_error_rate_on_both_colours_passes() -> None:
    """A noisy baseline: the old and the new version both fail 3 % of requests. The
    comparison finds no difference and the canary goes to 100 %."""
    run = canary_under_load("1.3.0", "1.3.1", steps=(5, 100), analysis=ANALYSIS)
    assert run.exit_code == 0, run.output[-3000:]
    assert run.bakes_passed == [5]
    assert not _comparisons(run.decisions)


@full_only
def test_release_whose_p99_doubles_is_failed_by_mann_whitney() -> None:
    """Twice the latency (a base delay and an exponential tail, both doubled: P99 doubles)
    fails the latency comparison (Mann-Whitney U) at the first step; no error rule could."""
    run = canary_under_load("1.4.0", "8.4.0", steps=(5, 100), analysis=LATENCY_ANALYSIS)
    assert run.exit_code == 3, run.output[-3000:]
    assert (run.failed_step, run.failed_percent) == ("Bake", 5)
    (decision,) = _comparisons(run.decisions)
    assert "Mann–Whitney" in decision["verdict"], decision["verdict"]


@full_only
def test_release_with_the_same_latency_distribution_passes() -> None:
    run = canary_under_load("1.4.0", "1.4.1", steps=(5, 100), analysis=LATENCY_ANALYSIS)
    assert run.exit_code == 0, run.output[-3000:]
    assert run.bakes_passed == [5]
