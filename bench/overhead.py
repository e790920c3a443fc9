"""Platform overhead: throughput and P99 through HAProxy's production listener against the same
requests sent straight to the one replica behind it (same wrk threads, connections and
duration; runs interleaved so background load hits both sides alike).

    .venv/bin/python bench/overhead.py [--rounds 3] [--seconds 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import update_section, write_result
from _platform import WrkResult, listen_overflows, platform, run_wrk

CONNECTIONS = (1, 16)


def _median(runs: list[WrkResult]) -> dict[str, Any]:
    return {
        "runs": len(runs),
        "requests": sum(r.requests for r in runs),
        "failed": sum(r.failed for r in runs),
        "rps": round(statistics.median(r.rps for r in runs), 0),
        "p50_ms": round(statistics.median(r.p50_ms for r in runs), 2),
        "p99_ms": round(statistics.median(r.p99_ms for r in runs), 2),
        "max_ms": round(max(r.max_ms for r in runs), 2),
        "each": [r.to_json() for r in runs],
    }


def measure(rounds: int = 3, seconds: float = 4.0) -> dict[str, Any]:
    with platform(desired_count=1) as bench:
        bench.start_colours({"web-blue": "1.0.0"}, replicas=1)
        bench.traffic.switch_listener("web-prod", "web-blue")
        (replica,) = bench.replica_ports("web-blue")
        targets = {"haproxy": bench.url(), "direct": f"http://127.0.0.1:{replica}/"}
        run_wrk(targets["haproxy"], seconds=1, connections=4)  # warm up both paths
        run_wrk(targets["direct"], seconds=1, connections=4)
        out: dict[str, Any] = {"rounds": rounds, "seconds": seconds, "by_connections": {}}
        for c in CONNECTIONS:
            runs: dict[str, list[WrkResult]] = {"haproxy": [], "direct": []}
            overflows = {"haproxy": 0, "direct": 0}
            for i in range(rounds):
                order = ("haproxy", "direct") if i % 2 == 0 else ("direct", "haproxy")
                for name in order:
                    before = listen_overflows()
                    runs[name].append(run_wrk(targets[name], seconds=seconds, connections=c))
                    overflows[name] += listen_overflows() - before
            h, d = _median(runs["haproxy"]), _median(runs["direct"])
            h["listen_overflows"], d["listen_overflows"] = overflows["haproxy"], overflows["direct"]
            out["by_connections"][str(c)] = {
                "haproxy": h,
                "direct": d,
                "throughput_ratio": round(h["rps"] / d["rps"], 2),
                "p99_added_ms": round(h["p99_ms"] - d["p99_ms"], 2),
                "p50_added_ms": round(h["p50_ms"] - d["p50_ms"], 2),
            }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args(argv)
    r = measure(args.rounds, args.seconds)
    rows = [
        "| connections | path | requests/s | p50 | p99 | max | requests | failed "
        "| listen overflows |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for c, d in r["by_connections"].items():
        for name, label in (("haproxy", "HAProxy listener -> replica"), ("direct", "replica")):
            x = d[name]
            rows.append(
                f"| {c} | {label} | {x['rps']:,.0f} | {x['p50_ms']} ms | {x['p99_ms']} ms "
                f"| {x['max_ms']} ms | {x['requests']:,} | {x['failed']} "
                f"| {x['listen_overflows']} |"
            )
        notes.append(
            f"- {c} connection(s): through HAProxy {d['throughput_ratio']}x the direct "
            f"throughput; P50 {d['p50_added_ms']:+} ms, P99 {d['p99_added_ms']:+} ms."
        )
    table = "\n".join(rows)
    print(table)
    print("\n".join(notes))
    path = write_result("overhead", r)
    update_section(
        "Platform overhead",
        f"""\
`wrk -t2` (`-t1` for one connection) against the production listener (HAProxy, one replica
behind it) and straight
against that replica's port, {r["rounds"]} interleaved runs of {r["seconds"]:g} s per side and
connection count; medians of the runs (max: the worst of them). The sample service is a
single-process Python server, so it, not HAProxy, sets the ceiling.

{table}

{chr(10).join(notes)}

The platform's HAProxy closes its server connection after every response
(`option http-server-close`, so that every request follows a listener switch): each request
through the listener opens a new connection to the replica, which starts a thread for it.
The sample service listens with a backlog of 512 so those connections are not dropped (with
Python's default of 5, the kernel dropped SYNs — `listen overflows`, the machine-wide
`TcpExt ListenOverflows` counter — and clients stalled 1-3 s). The remaining gap is the
single-process Python service accepting a connection and a thread per request, against wrk
keeping its 16 connections to the replica open when it goes direct. Everything runs on the
same 2-core machine: wrk, HAProxy and the replica compete for the CPU.

Produced by: `.venv/bin/python bench/overhead.py` (raw: `bench/results/{path.name}`).
""",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
