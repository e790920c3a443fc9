"""Cutover under load (DEP-1..4, RB-3): continuous wrk load through the production listener
while full blue-green deploys run through the CLI, each followed at once by a manual
``deployops rollback ID``; cycles repeat until the load window ends.

Reports requests and failed requests (goal: 0 of at least 500 k), the P99 of a per-response
probe during the listener switches against before the first deploy, and the engine's overhead:
wall time of a deploy minus its configured waits (WaitHealthy, Observe), goal <= 2 s.

    .venv/bin/python bench/cutover.py [--seconds 185] [--connections 16]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import percentile, update_section, write_result
from _platform import Bench, Probe, Sample, platform, start_wrk

GOAL_REQUESTS = 500_000
GOAL_OVERHEAD_S = 2.0
WAIT_STEPS = ("WaitHealthy", "Observe")
SETTINGS = {
    "health_timeout": 20,
    "stability_window": 2,
    "sample_interval": 1,
    "smoke_checks": [{"path": "/health"}, {"path": "/"}],
}


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def timings(bench: Bench, dep_id: str, cli_start: float, cli_seconds: float) -> dict[str, Any]:
    """One deployment's wall time, its waits and what is left (the engine's overhead); the
    CLI's time before the deployment record is created and after it is finished."""
    show = bench.cli_json("deployments", "show", dep_id)
    steps = {s["name"]: s for s in show["steps"]}
    waits = sum(
        _ts(s["finished_at"]) - _ts(s["started_at"])
        for name, s in steps.items()
        if name in WAIT_STEPS and s.get("finished_at")
    )
    engine = _ts(show["finished_at"]) - _ts(show["created_at"])
    switch = steps.get("SwitchListener", {})
    return {
        "id": dep_id,
        "kind": show["kind"],
        "version": show["version"],
        "status": show["status"],
        "cli_s": round(cli_seconds, 3),
        "engine_s": round(engine, 3),
        "waits_s": round(waits, 3),
        "overhead_engine_s": round(engine - waits, 3),
        "overhead_cli_s": round(cli_seconds - waits, 3),
        "cli_before_record_s": round(_ts(show["created_at"]) - cli_start, 3),
        "cli_after_record_s": round(cli_start + cli_seconds - _ts(show["finished_at"]), 3),
        "switch_window": (
            (_ts(switch["started_at"]), _ts(switch["finished_at"])) if switch else None
        ),
    }


def _result_id(stdout: str) -> str:
    """The deployment id from the ``{"result": ...}`` line of ``-o json`` output."""
    for line in reversed(stdout.splitlines()):
        if line.startswith('{"result"'):
            return str(json.loads(line)["result"]["id"])
    raise RuntimeError(f"no result line in: {stdout[-500:]}")


def _p99(samples: list[Sample]) -> float:
    return round(percentile([s.ms for s in samples], 0.99), 2) if samples else 0.0


def measure(seconds: float = 185.0, connections: int = 16) -> dict[str, Any]:
    with platform(blue_green=SETTINGS) as bench:
        first = bench.cli("deploy", "--version", "1.0.0")
        if first.returncode != 0:
            raise RuntimeError(f"first deploy failed: {first.stderr}")
        # wall clock of the step timestamps -> the probe's monotonic clock
        offset = time.time() - time.monotonic()
        runs: list[tuple[str, float, float, str, float, float]] = []
        wrk = start_wrk(bench.url(), seconds=seconds, connections=connections)
        started = time.monotonic()
        with Probe(bench.prod_port, workers=1, max_seconds=seconds + 10) as probe:
            time.sleep(3.0)  # the steady state before any deploy
            first_deploy = time.monotonic()
            n = 0
            # a cycle takes ~15 s here; stop when the next might outlast the load
            while time.monotonic() - started < seconds - 20 and n < 20:
                n += 1
                version = f"1.{n}.0"
                t0, w0 = time.monotonic(), time.time()
                dep = bench.cli("-o", "json", "deploy", "--version", version)
                dep_s = time.monotonic() - t0
                if dep.returncode != 0:
                    raise RuntimeError(f"deploy {version} failed: {dep.stderr}")
                dep_id = _result_id(dep.stdout)
                t1, w1 = time.monotonic(), time.time()
                rb = bench.cli("-o", "json", "rollback", dep_id)
                rb_s = time.monotonic() - t1
                if rb.returncode != 3:  # exit 3: rolled back
                    raise RuntimeError(f"rollback of {dep_id} failed: {rb.stderr}")
                runs.append((dep_id, w0, dep_s, _result_id(rb.stdout), w1, rb_s))
            last_action = time.monotonic()
            load = wrk.result()
        samples = probe.samples
        # read the step timings once the load is over, so the window is all deploying
        cycles = [
            {"deploy": timings(bench, d, d_w, d_s), "rollback": timings(bench, r, r_w, r_s)}
            for d, d_w, d_s, r, r_w, r_s in runs
        ]
    windows = [
        (w[0] - offset, w[1] - offset + 0.5)
        for c in cycles
        for w in (c["deploy"]["switch_window"], c["rollback"]["switch_window"])
        if w
    ]
    before = [s for s in samples if s.sent < first_deploy]
    during = [s for s in samples if any(lo <= s.done and s.sent <= hi for lo, hi in windows)]
    deploys = [c["deploy"] for c in cycles]
    rollbacks = [c["rollback"] for c in cycles]
    over = [d["overhead_engine_s"] for d in deploys]
    probe_failed = sum(1 for s in samples if s.status != 200)
    return {
        "seconds": seconds,
        "connections": connections,
        "cycles": len(cycles),
        "deploying_s": round(last_action - first_deploy, 1),
        "wrk": load.to_json(),
        "probe": {
            "requests": len(samples),
            "failed": probe_failed,
            "p99_before_ms": _p99(before),
            "p99_switch_ms": _p99(during),
            "p99_all_ms": _p99(samples),
            "samples_before": len(before),
            "samples_switch": len(during),
            "versions": sorted({s.version for s in samples if s.version}),
        },
        "deploys": deploys,
        "rollbacks": rollbacks,
        "overhead": {
            "deploy_engine_median_s": round(statistics.median(over), 3),
            "deploy_engine_max_s": round(max(over), 3),
            "deploy_cli_median_s": round(
                statistics.median(d["overhead_cli_s"] for d in deploys), 3
            ),
            "deploy_median_s": round(statistics.median(d["cli_s"] for d in deploys), 3),
            "waits_median_s": round(statistics.median(d["waits_s"] for d in deploys), 3),
            "rollback_cli_median_s": round(statistics.median(r["cli_s"] for r in rollbacks), 3),
            "rollback_engine_median_s": round(
                statistics.median(r["engine_s"] for r in rollbacks), 3
            ),
            "cli_before_record_median_s": round(
                statistics.median(d["cli_before_record_s"] for d in deploys + rollbacks), 3
            ),
            "cli_after_record_median_s": round(
                statistics.median(d["cli_after_record_s"] for d in deploys + rollbacks), 3
            ),
        },
        "meets_goal": {
            "failed_requests": load.failed + probe_failed == 0,
            "volume": load.requests + len(samples) >= GOAL_REQUESTS,
            "overhead": max(over) <= GOAL_OVERHEAD_S,
        },
    }


def _yes(ok: bool) -> str:
    return "met" if ok else "**not met**"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=185.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    r = measure(args.seconds, args.connections)
    w, p, o, g = r["wrk"], r["probe"], r["overhead"], r["meets_goal"]
    total = w["requests"] + p["requests"]
    failed = w["failed"] + p["failed"]
    volume = (
        "met"
        if g["volume"]
        else f"**not met**: this machine sustained {w['rps']:,.0f} requests/s through the "
        f"listener, {total:,} in the {r['seconds']:g} s window"
    )
    lines = [
        f"requests {total:,}  failed {failed}  rate {w['rps']:,.0f}/s  cycles {r['cycles']}",
        f"probe p99 before {p['p99_before_ms']} ms  during switches {p['p99_switch_ms']} ms",
        f"deploy overhead (engine, median/max) {o['deploy_engine_median_s']} / "
        f"{o['deploy_engine_max_s']} s",
    ]
    print("\n".join(lines))
    lat = w["latency_ms"]
    rows = [
        ("requests (wrk + probe)", f"{total:,}"),
        (
            "failed requests",
            f"{failed} (wrk: "
            + (", ".join(f"{k} {v}" for k, v in w["errors"].items() if v) or "none")
            + f"; probe: {p['failed']})",
        ),
        ("throughput", f"{w['rps']:,.0f} requests/s"),
        (
            "wrk latency, whole run",
            f"p50 {lat['p50']} ms, p99 {lat['p99']} ms, max {lat['max']} ms",
        ),
        (
            "probe P99 before the first deploy",
            f"{p['p99_before_ms']} ms ({p['samples_before']:,} responses)",
        ),
        (
            "probe P99 during the switches (switch step + 0.5 s)",
            f"{p['p99_switch_ms']} ms ({p['samples_switch']:,} responses)",
        ),
        (
            "deploy wall time (CLI, median)",
            f"{o['deploy_median_s']} s, of which waits {o['waits_median_s']} s",
        ),
        (
            "deploy overhead = engine time − waits (median / max)",
            f"{o['deploy_engine_median_s']} s / {o['deploy_engine_max_s']} s",
        ),
        ("deploy overhead = CLI wall time − waits (median)", f"{o['deploy_cli_median_s']} s"),
        (
            "rollback wall time (CLI / engine, median)",
            f"{o['rollback_cli_median_s']} s / {o['rollback_engine_median_s']} s",
        ),
        (
            "CLI time before the record is created / after it ends (median)",
            f"{o['cli_before_record_median_s']} s / {o['cli_after_record_median_s']} s",
        ),
    ]
    table = "\n".join(["| | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])
    path = write_result("cutover", r)
    update_section(
        "Cutover under load",
        f"""\
`wrk -t2 -c{r["connections"]}` through the production listener for {r["seconds"]:g} s, plus one
keep-alive probe client recording every response. After 3 s of steady load, cycles of
`deployops deploy --version 1.N.0` (blue-green: health wait, smoke checks `/health` and `/` on
the test listener, switch, 2 s observation at a 1 s sample interval, blue scaled to 0) each
followed at once by `deployops rollback ID` (blue was scaled to 0, so that is a redeploy of the
previous version with its own switch): {r["cycles"]} cycles in {r["deploying_s"]} s.

{table}

Goals: 0 failed requests — {_yes(g["failed_requests"])}; at least {GOAL_REQUESTS:,} requests —
{volume}; overhead ≤ {GOAL_OVERHEAD_S:g} s — {_yes(g["overhead"])} (engine time: from the
deployment's creation to its end; the CLI figure adds the process start and the imports).
The waits are the WaitHealthy and Observe steps (`deployops -o json deployments show ID`).
wrk counts a request unanswered within 2 s as a timeout (a failure). The machine's 1-minute
load average at the end: {os.getloadavg()[0]:.1f} on 2 cores (shared with other test runs):
the time figures grow with it, the request counts do not fail with it.

Produced by: `.venv/bin/python bench/cutover.py` (raw: `bench/results/{path.name}`).
""",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
