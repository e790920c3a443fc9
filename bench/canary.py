"""Canary comparison under load on the local platform: how often each verdict comes out right.

Four scenarios, each run ``--runs`` times (default 5), each run a fresh platform: the baseline
deployed, then the candidate deployed with ``--strategy canary`` (steps 5, 25, 50, 100 %; 3 s
bakes, a step lasting until each colour served the requests its comparison needs) under a
loopback load through the production listener:

1. **3 % errors** over a clean baseline: must be caught at its first step (5 %) with fewer
   than 10 % of all requests reaching it (below the rollback rules' 5 % threshold: only the
   comparison can catch it);
2. **noisy baseline**: 3 % errors on both colours: must pass;
3. **P99 doubles** (a base delay and an exponential tail, both doubled): must be failed by
   Mann–Whitney U;
4. **same latency distribution**: must pass.

The judge runs at its default confidence (98 %) with 400 requests per colour for the error
rate and 100 latency samples (the defaults ask 100 and 50: too few to see 3 % at a 5 % step).

    .venv/bin/python bench/canary.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import update_section, write_result

from tests.e2e.canary_support import CanaryRun, canary_under_load

STEPS = (5, 25, 50, 100)
BAKE_S = 3.0
ANALYSIS: dict[str, Any] = {
    "on_marginal": "continue",
    "metrics": {"error_rate": {"min_samples": 400}, "latency": {"min_samples": 100}},
}
SCENARIOS = (
    ("3 % errors, clean baseline", "1.0.0", "8.3.0", "caught at 5 %"),
    ("3 % errors on both (noisy baseline)", "1.3.0", "1.3.1", "pass"),
    ("P99 doubles", "1.4.0", "8.4.0", "caught at 5 %"),
    ("same latency distribution", "1.4.0", "1.4.1", "pass"),
)


def _outcome(run: CanaryRun) -> str:
    if run.exit_code == 0:
        return "pass"
    if run.failed_step == "Bake" and run.failed_percent is not None:
        return f"caught at {run.failed_percent} %"
    return f"exit {run.exit_code} at {run.failed_step or '?'}"


def _why(run: CanaryRun) -> str:
    comparisons = [d for d in run.decisions if d.get("rule") == "canary-comparison"]
    rules = [d for d in run.decisions if d.get("action") == "rollback"]
    if comparisons:
        return "comparison: " + str(comparisons[-1].get("verdict", ""))[:160]
    if rules:
        return f"rule {rules[-1].get('rule')}"
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    table = [
        "| scenario | run | outcome | expected | share of requests on the new version | "
        "canary deploy (s) | why |",
        "|---|---|---|---|---|---|---|",
    ]
    summary: list[str] = []
    for name, baseline, candidate, expected in SCENARIOS:
        right = 0
        shares: list[float] = []
        for i in range(1, args.runs + 1):
            run = canary_under_load(
                baseline, candidate, steps=STEPS, bake_s=BAKE_S, analysis=ANALYSIS
            )
            outcome = _outcome(run)
            ok = outcome == expected and (expected == "pass" or run.candidate_share < 0.10)
            right += ok
            if expected != "pass":
                shares.append(run.candidate_share)
            rows.append(
                {
                    "scenario": name,
                    "run": i,
                    "outcome": outcome,
                    "expected": expected,
                    "right": ok,
                    "total_requests": run.total_requests,
                    "candidate_requests": run.candidate_requests,
                    "candidate_share": round(run.candidate_share, 4),
                    "seconds": run.seconds,
                    "why": _why(run),
                }
            )
            table.append(
                f"| {name} | {i} | {outcome} | {expected} | "
                f"{run.candidate_share * 100:.1f} % ({run.candidate_requests:,} of "
                f"{run.total_requests:,}) | {run.seconds:.0f} | {_why(run) or '–'} |"
            )
            print(table[-1], flush=True)
        line = f"- {name}: {right} of {args.runs} {expected}"
        if shares:
            line += f" (share on the new version: max {max(shares) * 100:.1f} %, median "
            line += f"{statistics.median(shares) * 100:.1f} %)"
        summary.append(line)
    body = "\n".join(
        [
            "A canary (steps 5, 25, 50, 100 %, 3 s bakes, each step lasting until both colours",
            "served the requests the comparison needs: 400 for the error rate, 100 latency",
            "samples) under a loopback load of 6 keep-alive clients through the production",
            "listener; the judge at its default 98 % confidence; a fresh platform per run. The",
            "rollback rules are the shortened ones of the tests (error rate > 5 %: a 3 % release",
            "is below it, only the comparison can catch it).",
            "",
            *summary,
            "",
            *table,
            "",
            f"Produced by: `.venv/bin/python bench/canary.py --runs {args.runs}` "
            "(raw: `bench/results/canary.json`).",
        ]
    )
    update_section("Canary comparison under load", body)
    write_result("canary", {"runs": args.runs, "results": rows})
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
