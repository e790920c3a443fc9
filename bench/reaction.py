"""Automatic rollback reaction (RB-1, RB-2, DEP-7) on the local platform, through the CLI.

1. A release that fails 20 % of requests, deployed under load with a 1 s sample interval and
   the error-rate rule's window shortened to 3 s. Reaction: from the moment the rule's window is
   satisfied (the failing version's first response, seen by the load, plus the window) to the
   moment every new request reaches the previous version (from the per-response timeline).
   Goal <= 1 s; the failed requests users saw are counted.
2. A release that fails 100 % of requests: the smoke checks on the test listener
   (``/health``, ``/``) must stop it before the switch. Goal: 0 failed requests seen by users.

    .venv/bin/python bench/reaction.py [--workers 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import update_section, write_result
from _platform import Bench, Probe, Sample, platform

GOAL_REACTION_S = 1.0
ATTEMPTS = 5  # with /health-only smoke checks; 2 more with `/` too
DEPLOY_TIMEOUT_S = 60.0
WINDOW_S = 3.0
GOOD, PARTIAL, BROKEN = "1.0.0", "2.0.0", "5.0.0"
SETTINGS: dict[str, Any] = {
    "blue_green": {
        "health_timeout": 20,
        "stability_window": 8,
        # the metrics are sampled every 1 s (local.metrics_interval); the observer evaluates
        # the rules 4 times per sample so a period is judged soon after it is written
        "sample_interval": 0.25,
        "smoke_checks": [{"path": "/health"}, {"path": "/"}],
    },
    # RB-1's rules with their windows shortened like the waits (the guide's are minutes)
    "rollback": {
        "period": "1s",
        "min_requests": 5,
        "rules": {
            "error-rate": {"window": f"{WINDOW_S:g}s"},
            "p99-latency": {"window": "3s", "escalate_after": "6s"},
            "memory": {"window": "2s", "scale_out_grace": "4s"},
            "cpu": {"window": "5s"},
            "health-check-failures": {"window": "2s"},
        },
    },
    "version_environment": {
        PARTIAL: {"FAULT_ERROR_RATE": "0.2"},
        BROKEN: {"FAULT_ERROR_RATE": "1.0"},
    },
}


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _deployment(bench: Bench, version: str) -> dict[str, Any]:
    listed = bench.cli_json("deployments", "list", "-n", "10")
    rec = next((d for d in listed if d["version"] == version and d["kind"] == "deploy"), None)
    if rec is None:
        return {"status": "no deployment recorded", "steps": [], "events": [], "decisions": []}
    show: dict[str, Any] = bench.cli_json("deployments", "show", rec["id"])
    return show


def partial_failure(bench: Bench, workers: int) -> dict[str, Any]:
    offset = time.time() - time.monotonic()  # stored wall-clock times -> probe's clock
    with Probe(bench.prod_port, workers=workers, max_seconds=90, pause_s=0.002) as probe:
        time.sleep(1.0)
        t0 = time.monotonic()
        try:
            out = bench.cli("deploy", "--version", PARTIAL, timeout=DEPLOY_TIMEOUT_S)
            code: int | None = out.returncode
            stderr = out.stderr
        except subprocess.TimeoutExpired as exc:  # a deploy that never ends is a result too
            code = None
            raw = exc.stderr or b""
            stderr = raw.decode() if isinstance(raw, bytes) else raw
        cli_s = time.monotonic() - t0
        time.sleep(1.0)
    samples = probe.samples
    said = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    show = _deployment(bench, PARTIAL)
    steps = {s["name"]: s for s in show["steps"]}
    decisions = [d for d in show.get("decisions", []) if d.get("action") == "rollback"]
    bad = [s for s in samples if s.version == PARTIAL]
    by_sent = sorted(samples, key=lambda s: s.sent)
    failed_step = next((s for s in show["steps"] if s["status"] == "failed"), None)
    result: dict[str, Any] = {
        "exit_code": code,
        "timed_out": code is None,
        "caught_by": failed_step["name"] if failed_step else None,
        "error": show.get("error", ""),
        "status": show["status"],
        "cli_s": round(cli_s, 2),
        "requests": len(samples),
        "failed": sum(1 for s in samples if s.status != 200),
        "served_by_failing_version": len(bad),
        "rolled_back": code in (1, 3) and failed_step is not None,
        "rule_window_s": WINDOW_S,
        "decisions": [
            {"ts": d["ts"], "rule": d["rule"], "verdict": d["verdict"]} for d in decisions
        ],
        "observe": steps.get("Observe", {}).get("result"),
        "last_observe_note": next(
            (
                e["message"]
                for e in reversed(show.get("events", []))
                if e["kind"] in ("observe.extended", "progress") or "observ" in e["message"]
            ),
            said[-1] if said else "",
        ),
        "cli_said_last": said[-3:],
    }
    if not bad:
        return result
    first_bad = bad[0].done
    window_met = first_bad + WINDOW_S
    last_bad_sent = max(s.sent for s in bad)
    after = [s for s in by_sent if s.sent > last_bad_sent]
    result["first_bad_response_s"] = 0.0
    result["window_satisfied_s"] = WINDOW_S
    if result["rolled_back"] and after:
        restored = after[0].sent
        result["all_previous_s"] = round(restored - first_bad, 3)
        if result["caught_by"] == "Observe":  # the rules decided, not a step's own check
            result["reaction_s"] = round(restored - window_met, 3)
        result["after_restore_versions"] = sorted({s.version for s in after if s.version})
        if decisions:
            decided = _ts(decisions[0]["ts"]) - offset
            result["decided_s"] = round(decided - first_bad, 3)
            result["decision_to_restore_s"] = round(restored - decided, 3)
        result["failed_after_window"] = sum(
            1 for s in samples if s.status != 200 and s.sent >= window_met
        )
    return result


def total_failure(bench: Bench, workers: int) -> dict[str, Any]:
    with Probe(bench.prod_port, workers=workers, max_seconds=90, pause_s=0.002) as probe:
        time.sleep(1.0)
        out = bench.cli("deploy", "--version", BROKEN, timeout=90)
        time.sleep(1.0)
    samples: list[Sample] = probe.samples
    show = _deployment(bench, BROKEN)
    failed_step = next((s for s in show["steps"] if s["status"] == "failed"), None)
    return {
        "exit_code": out.returncode,
        "status": show["status"],
        "error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "",
        "requests": len(samples),
        "served_by_broken_version": sum(1 for s in samples if s.version == BROKEN),
        "failed_seen_by_users": sum(1 for s in samples if s.version == BROKEN or s.status == 0),
        "stopped_at": failed_step["name"] if failed_step else None,
        "switched": any(
            s["name"] == "SwitchListener" and s["status"] == "succeeded" for s in show["steps"]
        ),
        "versions_seen": sorted({s.version for s in samples if s.version}),
    }


def _attempts(bench: Bench, workers: int, n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for _ in range(n):
        out.append(partial_failure(bench, workers))
        if out[-1]["timed_out"]:
            break  # the killed run holds the deploy lock: this platform is done
        if not out[-1]["rolled_back"]:
            # the failing release stayed live: put the good one back before the next try
            bench.cli("deploy", "--version", GOOD, timeout=DEPLOY_TIMEOUT_S)
    return out


def measure(workers: int = 4, attempts: int = ATTEMPTS) -> dict[str, Any]:
    # The rules' own reaction: smoke checks (and the switch's confirming probes, which use the
    # same paths) on /health only, so the failing release reaches users and a rule must act.
    rules_only = {
        **SETTINGS,
        "blue_green": {**SETTINGS["blue_green"], "smoke_checks": [{"path": "/health"}]},
    }
    with platform(**rules_only) as bench:
        if bench.cli("deploy", "--version", GOOD).returncode != 0:
            raise RuntimeError("first deploy failed")
        by_rules = _attempts(bench, workers, attempts)
    with platform(**SETTINGS) as bench:
        if bench.cli("deploy", "--version", GOOD).returncode != 0:
            raise RuntimeError("first deploy failed")
        with_smoke = _attempts(bench, workers, 2)
    with platform(**SETTINGS) as bench:  # fresh: a try that never ended may hold the lock
        if bench.cli("deploy", "--version", GOOD).returncode != 0:
            raise RuntimeError("first deploy failed")
        broken = total_failure(bench, workers)
    reactions = [a["reaction_s"] for a in by_rules if "reaction_s" in a]
    return {
        "workers": workers,
        "goal_reaction_s": GOAL_REACTION_S,
        "partial_failure_rules": by_rules,
        "partial_failure_with_smoke_checks": with_smoke,
        "total_failure": broken,
        "meets_goal": {
            "reaction": bool(reactions) and max(reactions) <= GOAL_REACTION_S,
            "partial_failure_stopped": all(a["rolled_back"] for a in by_rules + with_smoke),
            "total_failure_no_user_failures": broken["failed_seen_by_users"] == 0,
        },
    }


def _yes(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _attempt_row(checks: str, n: int, a: dict[str, Any]) -> str:
    outcome = (
        f"stopped at {a['caught_by']} (exit {a['exit_code']})"
        if a["rolled_back"]
        else f"**not stopped**: deploy still running after {DEPLOY_TIMEOUT_S:g} s (killed)"
        if a["timed_out"]
        else f"**not stopped**: {a['status']} (exit {a['exit_code']})"
    )
    return (
        f"| {checks} | {n} | {outcome} | {a['served_by_failing_version']:,} "
        f"| {a['requests']:,} / {a['failed']} "
        f"| {a.get('all_previous_s', '–')} s | {a.get('decided_s', '–')} "
        f"| {a.get('reaction_s', '–')} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--attempts", type=int, default=ATTEMPTS)
    args = parser.parse_args(argv)
    r = measure(args.workers, args.attempts)
    rules, smoke = r["partial_failure_rules"], r["partial_failure_with_smoke_checks"]
    b, g = r["total_failure"], r["meets_goal"]
    print(json.dumps({"rules": rules, "smoke": smoke, "total": b}, indent=1)[:5000])
    path = write_result("reaction", r)
    rows = [
        "| smoke checks | try | outcome | responses from the failing version "
        "| requests / failed seen | all new requests on the previous version after "
        "| rule decided after (s) | reaction (s) |",
        "|---|---|---|---|---|---|---|---|",
        *(_attempt_row("`/health`", n, a) for n, a in enumerate(rules, 1)),
        *(_attempt_row("`/health`, `/`", n, a) for n, a in enumerate(smoke, 1)),
    ]
    if any("reaction_s" in a for a in rules):
        acted = [a for a in rules + smoke if "decided_s" in a and "reaction_s" in a]
        split = ""
        if acted:
            times = sorted(a["reaction_s"] for a in acted)
            split += (
                f" Reaction over the {len(times)} tries where a rule acted: min "
                f"{times[0]:.2f} s, median {statistics.median(times):.2f} s, max "
                f"{times[-1]:.2f} s."
            )
        if acted:
            detect = max(a["decided_s"] - WINDOW_S for a in acted)
            switch_ms = max(a["decision_to_restore_s"] for a in acted) * 1000
            split += (
                f" Of that, the rule's decision came at most {detect:.2f} s after its window "
                f"was satisfied (the collector writes a period when it ends, on the same "
                f"1 s grid the rule's periods are counted on, and the observer evaluates "
                f"every 0.25 s); from the stored decision to "
                f"the last request reaching the failing version took at most "
                f"{switch_ms:.0f} ms"
            )
        verdict = _yes(g["reaction"]) + "." + split
    elif all(a["rolled_back"] for a in rules):
        verdict = (
            "not measured: each try was stopped by a deployment step's own check before "
            "the rule's window could be satisfied (see the table)"
        )
    else:
        note = next((a["last_observe_note"] for a in rules if a["last_observe_note"]), "")
        verdict = "**not met**: the rules did not roll the failing release back" + (
            f". The engine's last word on it: “{note}”" if note else ""
        )
    rows_b = [
        ("outcome", f"exit {b['exit_code']}, status {b['status']}, stopped at {b['stopped_at']}"),
        ("switched to the broken version", "yes" if b["switched"] else "no"),
        (
            "requests / answered by the broken version",
            f"{b['requests']:,} / {b['served_by_broken_version']}",
        ),
        ("failed requests seen by users", str(b["failed_seen_by_users"])),
    ]
    table_b = "\n".join(["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows_b)])
    update_section(
        "Automatic rollback reaction",
        f"""\
Load: {r["workers"]} keep-alive probe clients through the production listener recording every
response's time, status and version. Rules: RB-1's with 1 s periods, at least 5 requests per
period, error rate > 5 % over {WINDOW_S:g} s; metrics sampled every 1 s on the wall-clock
grid (the rules' periods on the same grid), the rules evaluated every 0.25 s; 8 s observation;
smoke
checks `/health` and `/` on the test listener.

**{PARTIAL}: 20 % of requests fail**, deployed {len(rules)} times with smoke checks on
`/health` only, so the release always reaches users and a rule must act, then {len(smoke)}
times with the smoke checks above: the smoke check of `/` on the test listener catches a 20 %
failure by chance (about one time in five), before any user sees it; otherwise the rule acts.
Times are from the failing version's first response seen by the load; the rule's window is
satisfied {WINDOW_S:g} s after it, and the reaction runs from then to the first request after
which every new request reached the previous version.

{chr(10).join(rows)}

Goal: reaction ≤ {GOAL_REACTION_S:g} s — {verdict}.

**{BROKEN}: every request fails**:

{table_b}

Goal: 0 failed requests seen by users — {_yes(g["total_failure_no_user_failures"])}.

Produced by: `.venv/bin/python bench/reaction.py` (raw: `bench/results/{path.name}`).
""",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
