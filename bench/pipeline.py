"""The metrics pipeline at the highest request rate this machine sustains: HAProxy's
per-request log lines (UDP syslog) -> the daemon's collector -> the state store. ``wrk -t2
-c16`` through the production listener for a fixed time; lost lines are HAProxy's own count
of requests on the production frontend minus the requests the collector stored, plus the
kernel's UDP receive-buffer drops; the collector's CPU is the daemon process's CPU time under
load minus the same time idle, per 1,000 requests per second.

    .venv/bin/python bench/pipeline.py [--seconds 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import update_section, write_result
from _platform import Bench, platform, run_wrk

from deployops.drivers.local.paths import read_json
from deployops.store import StateStore


def _udp_drops() -> int:
    """Machine-wide ``Udp: RcvbufErrors`` (-1 when unreadable)."""
    try:
        lines = Path("/proc/net/snmp").read_text().splitlines()
    except OSError:
        return -1
    udp = [ln.split() for ln in lines if ln.startswith("Udp:")]
    if len(udp) < 2:
        return -1
    table = dict(zip(udp[0][1:], udp[1][1:], strict=False))
    return int(table.get("RcvbufErrors", -1))


def _frontend_requests(bench: Bench) -> int:
    text = bench.runtime.command("show stat")
    header = text.splitlines()[0][2:].split(",")
    idx = {n: i for i, n in enumerate(header)}
    for line in text.splitlines()[1:]:
        row = line.split(",")
        if len(row) > 1 and row[0] == "web-prod" and row[1] == "FRONTEND":
            return int(row[idx["req_tot"]] or 0)
    raise RuntimeError("no web-prod frontend in show stat")


def _stored(bench: Bench, start: float) -> int:
    store = StateStore.open(bench.config.state_url())
    try:
        rows = store.samples("web-blue", "RequestCount", start, math.inf)
    finally:
        store.close()
    return int(sum(s.value for s in rows))


def measure(seconds: float, rounds: int) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    with platform(desired_count=1) as bench:
        bench.start_colours({"web-blue": "1.0.0"}, replicas=2)
        bench.traffic.switch_listener("web-prod", "web-blue")
        pid = int((read_json(bench.paths.daemon_json) or {})["pid"])
        daemon = psutil.Process(pid)
        for _ in range(rounds):
            # idle: the same length of time without load (health checks, sampling, process
            # metrics): subtracted, so what remains is the per-request path
            c0 = sum(daemon.cpu_times()[:2])
            time.sleep(seconds)
            idle_cpu = sum(daemon.cpu_times()[:2]) - c0
            time.sleep(1.5)  # the idle interval closes
            start = time.time()
            front0, drops0 = _frontend_requests(bench), _udp_drops()
            c0 = sum(daemon.cpu_times()[:2])
            wrk = run_wrk(bench.url(), seconds=seconds, connections=16)
            load_cpu = sum(daemon.cpu_times()[:2]) - c0
            front = _frontend_requests(bench) - front0
            # every line is in once the interval after the load ends is written (bounded);
            # from one interval before the start: that one closes after the load began
            since = start - 1.0
            deadline = time.monotonic() + 5.0
            while (stored := _stored(bench, since)) < front and time.monotonic() < deadline:
                time.sleep(0.2)
            drops = _udp_drops() - drops0
            rps = front / wrk.duration_s
            extra = max(0.0, load_cpu - idle_cpu) / wrk.duration_s
            out.append(
                {
                    "requests_haproxy": front,
                    "requests_wrk": wrk.requests,
                    "requests_stored": stored,
                    "lost": front - stored,
                    "udp_rcvbuf_drops": drops,
                    "rps": round(rps),
                    "daemon_cpu_load_s": round(load_cpu, 3),
                    "daemon_cpu_idle_s": round(idle_cpu, 3),
                    "collector_cpu_share": round(extra, 4),
                    "cpu_per_1000_rps": round(extra / (rps / 1000), 4) if rps else None,
                }
            )
    return {"seconds": seconds, "rounds": out}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    r = measure(args.seconds, args.rounds)
    print(r)
    path = write_result("pipeline", r)
    rows = [
        "| round | requests (HAProxy) | stored by the collector | lost | UDP drops | requests/s "
        "| daemon CPU under load / idle (s) | CPU per 1,000 requests/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, x in enumerate(r["rounds"], 1):
        rows.append(
            f"| {i} | {x['requests_haproxy']:,} | {x['requests_stored']:,} | {x['lost']} "
            f"| {x['udp_rcvbuf_drops']} | {x['rps']:,} | {x['daemon_cpu_load_s']} / "
            f"{x['daemon_cpu_idle_s']} | {x['cpu_per_1000_rps']:.1%} of a core |"
        )
    per = [x["cpu_per_1000_rps"] for x in r["rounds"] if x["cpu_per_1000_rps"] is not None]
    lost = sum(x["lost"] for x in r["rounds"])
    update_section(
        "Metrics pipeline",
        f"""\
HAProxy's per-request log (UDP syslog) -> the daemon's collector -> the SQLite state store, at
the highest rate this machine sustains (`wrk -t2 -c16` through the production listener, two
replicas of the sample service) for {r["seconds"]:g} s per round. Lost lines: HAProxy's
own request count on the production frontend (`show stat` `req_tot`) minus the requests the
collector stored; UDP drops: the kernel's `Udp RcvbufErrors` during the round (machine-wide).
Collector CPU: the daemon's CPU time under load minus the same time idle.

{chr(10).join(rows)}

Lost lines in all: {lost} — {"met" if lost == 0 else "**not met**"} (goal 0). Collector CPU per
1,000 requests/s: min {min(per):.1%}, median {statistics.median(per):.1%}, max {max(per):.1%}
of one core. Everything shares 2 cores with wrk, HAProxy and the replicas, so the rate is the
machine's ceiling for the whole path, not the collector's.

Produced by: `.venv/bin/python bench/pipeline.py` (raw: `bench/results/{path.name}`).
""",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
