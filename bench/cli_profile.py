"""Where the CLI's time goes around a deployment: ``deployops deploy`` on a running local
platform (blue-green of the sample service, no observation), repeated; per run the time from
the process start to the deployment record and from the record's end to the process exit,
with ``--profile`` a cProfile of one more run (``deployops-cli-profile.prof`` in the temp folder).

    .venv/bin/python bench/cli_profile.py [--runs 7] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import update_section, write_result
from _platform import DEPLOYOPS, ENV, platform

GOAL_BEFORE_S = 0.4
GOAL_AFTER_S = 0.2
SETTINGS: dict[str, Any] = {
    "blue_green": {"health_timeout": 20, "stability_window": 0, "smoke_checks": []},
}


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _one(bench: Any, version: str) -> dict[str, float]:
    c0 = _children_cpu()
    w0 = time.time()
    out = bench.cli("-o", "json", "deploy", "--version", version)
    w1 = time.time()
    cpu = _children_cpu() - c0
    if out.returncode != 0:
        raise RuntimeError(f"deploy {version} failed: {out.stderr.strip()[-500:]}")
    dep_id = next(
        str(json.loads(line)["result"]["id"])
        for line in reversed(out.stdout.splitlines())
        if line.startswith("{") and '"result"' in line
    )
    show = bench.cli_json("deployments", "show", dep_id)
    return {
        "before_record_s": round(_ts(show["created_at"]) - w0, 3),
        "after_end_s": round(w1 - _ts(show["finished_at"]), 3),
        "wall_s": round(w1 - w0, 3),
        "cli_cpu_s": round(cpu, 3),
    }


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }


def measure(runs: int, profile: bool) -> dict[str, Any]:
    with platform(desired_count=1, **SETTINGS) as bench:
        each = [_one(bench, f"1.{i}.0") for i in range(runs)]
        if profile:
            prof = Path(tempfile.gettempdir()) / "deployops-cli-profile.prof"
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "cProfile",
                    "-o",
                    str(prof),
                    DEPLOYOPS,
                    "-c",
                    str(bench.config.path),
                    "-e",
                    ENV,
                    "deploy",
                    "--version",
                    f"1.{runs}.0",
                ],
                capture_output=True,
                check=True,
                timeout=120,
            )
    return {
        "runs": each,
        "before_record": _stats([r["before_record_s"] for r in each]),
        "after_end": _stats([r["after_end_s"] for r in each]),
        "cli_cpu": _stats([r["cli_cpu_s"] for r in each]),
        "load_1m_after": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    r = measure(args.runs, args.profile)
    print(json.dumps({k: v for k, v in r.items() if k != "runs"}, indent=1))
    path = write_result("cli_profile", r)
    b, a, cpu = r["before_record"], r["after_end"], r["cli_cpu"]
    met_b = "met" if b["median"] <= GOAL_BEFORE_S else "**not met**"
    met_a = "met" if a["median"] <= GOAL_AFTER_S else "**not met**"
    update_section(
        "CLI around a deployment",
        f"""\
`deployops -o json deploy --version 1.N.0` on a running local platform (blue-green, one
replica, no smoke checks, no observation), {len(r["runs"])} runs; from the process start to
the deployment record's creation, and from the record's end to the process exit.

| | min | median | max |
|---|---|---|---|
| process start -> deployment record | {b["min"]} s | {b["median"]} s | {b["max"]} s |
| deployment end -> process exit | {a["min"]} s | {a["median"]} s | {a["max"]} s |
| CPU of the whole `deploy` process (user + system) | {cpu["min"]} s | {cpu["median"]} s \
| {cpu["max"]} s |

The machine's 1-minute load average after the runs: {r["load_1m_after"]} on 2 cores (other
test runs share it). Wall times grow with it; the CPU row does not, and bounds from below
what the two wall-time rows can reach on an idle machine: the process spends its CPU time
mostly before the record (imports of SQLAlchemy, pydantic, Rich and the configuration
models, the store opening, the daemon calls) and on the traffic check, and sleeps in the waits.
Measured reason for the first goal: the process needs about 1 s of CPU in all (min above),
most of it importing before the record can be written (`python -X importtime`: SQLAlchemy
with its SQLite dialect, which loads asyncio, pydantic and the configuration models, Typer and
Rich), so on this machine 0.4 s cannot be reached by the CLI as it is built; it takes keeping
the engine in a long-running process (the daemon) or a lighter store layer. Done here: daemon
calls no longer wait 40 ms each for a delayed ACK (section "Daemon API calls"), the drivers'
client and the prober no longer import httpx before the record, and the process exits without
tearing the interpreter down (end to exit was 0.48 s before, 0.2 s or less now).

Goals: start to record ≤ {GOAL_BEFORE_S:g} s — {met_b}; end to exit ≤ {GOAL_AFTER_S:g} s —
{met_a}.

Produced by: `.venv/bin/python bench/cli_profile.py` (raw: `bench/results/{path.name}`).
""",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
