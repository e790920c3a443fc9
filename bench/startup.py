"""Start-up: how long ``deployops --help`` takes against a bare ``python -c pass``.

Goal: under 300 ms, so the CLI feels instant and shell wrappers (DEP-5) add no noticeable
delay. Runs are interleaved so background load hits both sides alike.

    .venv/bin/python bench/startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import VENV_BIN, summary_ms, update_section, write_result

GOAL_MS = 300.0


def _time(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def measure(runs: int = 20) -> dict[str, object]:
    cli = [str(VENV_BIN / "deployops"), "--help"]
    bare = [sys.executable, "-c", "pass"]
    _time(cli)  # warm the file cache and bytecode once; not counted
    _time(bare)
    cli_s: list[float] = []
    bare_s: list[float] = []
    for _ in range(runs):
        cli_s.append(_time(cli))
        bare_s.append(_time(bare))
    cli_sum = summary_ms(cli_s)
    bare_sum = summary_ms(bare_s)
    ratio = round(cli_sum["median_ms"] / bare_sum["median_ms"], 2)
    return {
        "command": " ".join(["deployops", "--help"]),
        "goal_ms": GOAL_MS,
        "deployops_help": cli_sum,
        "python_pass": bare_sum,
        "ratio_median": ratio,
        "meets_goal": cli_sum["median_ms"] < GOAL_MS,
    }


def _row(label: str, d: dict[str, float]) -> str:
    cells = " | ".join(f"{d[k]} ms" for k in ("median_ms", "p90_ms", "min_ms", "max_ms"))
    return f"| `{label}` | {cells} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    result = measure(args.runs)
    cli = result["deployops_help"]
    bare = result["python_pass"]
    assert isinstance(cli, dict)
    assert isinstance(bare, dict)
    print(f"deployops --help  median {cli['median_ms']} ms  p90 {cli['p90_ms']} ms")
    print(f"python -c pass    median {bare['median_ms']} ms  p90 {bare['p90_ms']} ms")
    print(
        f"ratio (median)    {result['ratio_median']}x   goal < {GOAL_MS:g} ms: "
        f"{'met' if result['meets_goal'] else 'NOT met'}"
    )
    path = write_result("startup", result)
    verdict = "met" if result["meets_goal"] else "**not met**"
    update_section(
        "Start-up",
        f"""\
`deployops --help` against a bare `python -c pass`, {cli["runs"]} runs each, interleaved
(goal: `--help` under {GOAL_MS:g} ms — {verdict}).

| command | median | p90 | min | max |
|---|---|---|---|---|
{_row("deployops --help", cli)}
{_row("python -c pass", bare)}

Ratio of medians: {result["ratio_median"]}x. Machine load is recorded in the JSON; on a busy
machine both columns grow. Command modules import pydantic, SQLAlchemy and Rich tables inside
the functions that need them, so `--help` loads only Typer and the console.

Produced by: `.venv/bin/python bench/startup.py` (raw: `bench/results/{path.name}`).
""",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
