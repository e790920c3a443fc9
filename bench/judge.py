"""The canary judge on generated samples: how often it passes, holds or fails a release in the
cases the rollback issue names, each run on many seeds (at least 5).

Each run draws one window per colour: binomial errors and log-normal latencies (median 100 ms,
sigma 0.6, a long right tail), and judges the new colour against the old with the default
policy (98 % confidence; error rate +1 pp, critical; mean latency +10 %; spread +50 %).

    .venv/bin/python bench/judge.py [--runs 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import update_section, write_result

from deployops.domain.judge import ColourWindow, JudgePolicy, judge

MEDIAN_S = 0.1
SIGMA = 0.6


def _window(
    rng: np.random.Generator,
    requests: int,
    error_rate: float,
    *,
    scale: float = 1.0,
    tail_share: float = 0.0,
    tail_factor: float = 1.0,
) -> ColourWindow:
    errors = int(rng.binomial(requests, error_rate))
    lat = rng.lognormal(np.log(MEDIAN_S * scale), SIGMA, requests)
    if tail_share:
        # Only the slowest requests get slower: the tail moves, the middle does not.
        cut = np.quantile(lat, 1.0 - tail_share)
        lat = np.where(lat >= cut, lat * tail_factor, lat)
    return ColourWindow(requests, errors, tuple(float(v) for v in lat))


#: name -> (what it shows, expected verdict, (baseline, canary) makers)
SCENARIOS: dict[str, tuple[str, str, Any]] = {
    "same distribution": (
        "0.2 % errors and the same latency on both, 500 requests each",
        "pass",
        lambda r: (_window(r, 500, 0.002), _window(r, 500, 0.002)),
    ),
    "P99 doubled": (
        "every latency × 2 (P99 doubles), 500 requests each",
        "fail",
        lambda r: (_window(r, 500, 0.002), _window(r, 500, 0.002, scale=2.0)),
    ),
    "3 % vs 0.2 % errors": (
        "the new version fails 3 % of requests, the old 0.2 %, 500 requests each",
        "fail",
        lambda r: (_window(r, 500, 0.002), _window(r, 500, 0.03)),
    ),
    "3 % on both (noisy baseline)": (
        "both versions fail 3 % of requests, 500 requests each",
        "pass",
        lambda r: (_window(r, 500, 0.03), _window(r, 500, 0.03)),
    ),
    "3 % at a 5 % canary step": (
        "3 % vs 0.2 % errors; 500 requests on the new version, 9,500 on the old (5 % of traffic)",
        "fail",
        lambda r: (_window(r, 9500, 0.002), _window(r, 500, 0.03)),
    ),
    "3 % on 150 requests": (
        "3 % vs 0.2 % errors with only 150 requests on the new version (1.5 % of 10,000)",
        "fail",
        lambda r: (_window(r, 9850, 0.002), _window(r, 150, 0.03)),
    ),
    "only the slowest 2 % × 2": (
        "the slowest 2 % of requests take twice as long, the rest unchanged",
        "fail",
        lambda r: (
            _window(r, 500, 0.002),
            _window(r, 500, 0.002, tail_share=0.02, tail_factor=2.0),
        ),
    ),
}


def measure(runs: int) -> dict[str, Any]:
    policy = JudgePolicy()
    out: dict[str, Any] = {}
    for name, (what, expected, make) in SCENARIOS.items():
        verdicts: Counter[str] = Counter()
        failed_by: Counter[str] = Counter()
        took: list[float] = []
        for seed in range(runs):
            base, canary = make(np.random.default_rng(seed))
            t0 = time.perf_counter()
            result = judge(base, canary, policy)
            took.append(time.perf_counter() - t0)
            verdicts[result.verdict.value] += 1
            for m in result.failed:
                failed_by[m.name] += 1
        out[name] = {
            "what": what,
            "expected": expected,
            "runs": runs,
            "verdicts": {v: verdicts.get(v, 0) for v in ("pass", "marginal", "fail")},
            "failed_by": dict(failed_by),
            "as_expected": verdicts.get(expected, 0),
            "judge_ms_median": round(statistics.median(took) * 1000, 2),
        }
    return {"runs": runs, "policy": policy.to_dict(), "scenarios": out}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=200, help="seeded runs per case (at least 5)")
    args = ap.parse_args(argv)
    runs = max(5, args.runs)
    r = measure(runs)
    path = write_result("judge", r)
    rows = []
    for name, s in r["scenarios"].items():
        v = s["verdicts"]
        by = ", ".join(f"{k} {n}" for k, n in sorted(s["failed_by"].items())) or "-"
        rows.append(
            f"| {name} | {s['expected']} | {v['pass']} | {v['marginal']} | {v['fail']} "
            f"| {s['as_expected']}/{s['runs']} | {by} | {s['judge_ms_median']} ms |"
        )
        print(f"{name}: {v} (expected {s['expected']}; failed metrics: {by})")
    sc = r["scenarios"]
    tail, same = sc["only the slowest 2 % × 2"], sc["same distribution"]
    noisy, err = sc["3 % on both (noisy baseline)"], sc["3 % vs 0.2 % errors"]
    few = sc["3 % on 150 requests"]
    cases = "\n".join(f"- **{name}**: {s['what']}." for name, s in r["scenarios"].items())
    update_section(
        "Canary judge",
        f"""\
The statistical comparison of the new version with the old (`domain/judge.py`: Fisher's exact
test on the error rate, Mann-Whitney U on latency, Levene/Brown-Forsythe on its spread, the
default policy at 98 % confidence) on generated windows: binomial errors and log-normal
latencies (median {MEDIAN_S * 1000:g} ms, sigma {SIGMA}), {runs} seeded runs per case.

{cases}

| case | expected | pass | marginal | fail | as expected | failing metrics (runs) | judge, median |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

A release identical to its baseline fails in {same["verdicts"]["fail"]} of {runs} runs, the same
3 % error rate on both versions in {noisy["verdicts"]["fail"]} (the 98 % confidence, with the
effect floors on top). 3 % against 0.2 % is caught in {err["as_expected"]} of {runs} runs on 500
requests of the new version and in {few["as_expected"]} from 150 requests (1.5 % of the
traffic): the minimum of 100 requests per colour is
where the error-rate comparison starts, and a step that sends fewer requests is "not enough
samples" (marginal at best), never a pass. A change of the slowest 2 % alone is **not caught**
by the comparison ({tail["verdicts"]["pass"]} of {runs} runs pass, {tail["verdicts"]["marginal"]}
marginal on the spread): it moves neither the mean by 10 % nor the rank test much. That is the
P99 rule of the rollback rules' job, which still judges the new version at every step.

Produced by: `.venv/bin/python bench/judge.py --runs {runs}` (raw: `bench/results/{path.name}`).
""",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
