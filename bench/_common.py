"""Shared by the benchmarks: where results go, percentiles, and the BENCHMARKS.md section
each benchmark owns (``update_section("Start-up", text)`` replaces only that section)."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "BENCHMARKS_MD",
    "REPO",
    "RESULTS",
    "VENV_BIN",
    "machine",
    "percentile",
    "summary_ms",
    "update_section",
    "write_result",
]

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
BENCHMARKS_MD = REPO / "BENCHMARKS.md"
VENV_BIN = Path(sys.executable).parent

_HEADER = (
    "# Benchmarks\n\n"
    "Each section is written by the benchmark named in it; rerun one with its command or all of\n"
    "them with `make bench` (`python bench/run_all.py`). Raw results are in `bench/results/`.\n"
)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "runs": len(ms),
        "min_ms": round(min(ms), 1),
        "median_ms": round(statistics.median(ms), 1),
        "p90_ms": round(percentile(ms, 0.9), 1),
        "max_ms": round(max(ms), 1),
    }


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_1m": round(os.getloadavg()[0], 2),
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    """``bench/results/<name>.json`` with a timestamp and the machine it ran on."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    doc: dict[str, Any] = {
        "benchmark": name,
        "at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **data,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def update_section(title: str, body: str, *, path: Path = BENCHMARKS_MD) -> None:
    """Replace ``## {title}`` (up to the next ``## `` heading) with ``body``; append if new."""
    text = path.read_text(encoding="utf-8") if path.exists() else _HEADER
    heading = f"## {title}"
    block = f"{heading}\n\n{body.strip()}\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.rstrip() == heading), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + block
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        after = "".join(lines[end:])
        new = "".join(lines[:start]) + block + ("\n" + after if after else "")
    path.write_text(new, encoding="utf-8")
