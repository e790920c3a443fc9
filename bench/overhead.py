"""Platform overhead: throughput and P99 through HAProxy's production listener against the same
requests sent straight to the one replica behind it (same wrk threads, connections and
duration; runs interleaved so background load hits both sides alike). Two backends: the
single-process sample service, and a multi-worker ASGI server (uvicorn, ``bench/_asgi_backend.py``)
so the proxy's own cost is seen apart from the sample service's.

    .venv/bin/python bench/overhead.py [--rounds 5] [--seconds 4]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import update_section, write_result
from _platform import WrkResult, listen_overflows, platform, run_wrk, wait_until

from deployops.domain.model import HealthCheck

CONNECTIONS = (1, 16)
BACKENDS = ("sample", "asgi")
BENCH_DIR = Path(__file__).resolve().parent


def _median(runs: list[WrkResult]) -> dict[str, Any]:
    return {
        "runs": len(runs),
        "requests": sum(r.requests for r in runs),
        "failed": sum(r.failed for r in runs),
        "rps": round(statistics.median(r.rps for r in runs), 0),
        "rps_min": round(min(r.rps for r in runs), 0),
        "rps_max": round(max(r.rps for r in runs), 0),
        "p50_ms": round(statistics.median(r.p50_ms for r in runs), 2),
        "p99_ms": round(statistics.median(r.p99_ms for r in runs), 2),
        "max_ms": round(max(r.max_ms for r in runs), 2),
        "each": [r.to_json() for r in runs],
    }


def _ratios(h: list[WrkResult], d: list[WrkResult]) -> dict[str, float]:
    """Throughput ratio of each interleaved pair (HAProxy run / the direct run next to it)."""
    each = [a.rps / b.rps for a, b in zip(h, d, strict=True) if b.rps]
    return {
        "min": round(min(each), 2),
        "median": round(statistics.median(each), 2),
        "max": round(max(each), 2),
    }


# Checks that a busy machine does not fail: with the platform's quick test checks (0.2 s
# timeout, 2 failures) a replica slowed down by the load was taken out of the pool and HAProxy
# answered 503 itself, which wrk counts as fast, failed requests.
LENIENT_HEALTH = HealthCheck(
    path="/health", interval_s=1.0, timeout_s=2.0, healthy_threshold=2, unhealthy_threshold=5
)


def _start_backend(bench: Any, backend: str) -> None:
    spec = dataclasses.replace(bench.spec("1.0.0", WORKERS="2"), health_check=LENIENT_HEALTH)
    if backend == "asgi":
        spec = dataclasses.replace(
            spec, command=(sys.executable, "_asgi_backend.py"), working_dir=str(BENCH_DIR)
        )
    td = bench.compute.register_task_definition(spec)
    bench.traffic.create_target_group("web-blue", health_check=LENIENT_HEALTH)
    bench.compute.create_service(
        "web-blue", task_definition=td.ref, desired_count=1, target_group="web-blue"
    )
    wait_until(
        lambda: (
            (tg := bench.traffic.describe_target_group("web-blue")) is not None
            and tg.healthy_count == 1
        ),
        timeout_s=60,
        what=f"{backend} backend healthy",
    )


def measure_backend(backend: str, rounds: int, seconds: float) -> dict[str, Any]:
    with platform(desired_count=1) as bench:
        _start_backend(bench, backend)
        bench.traffic.switch_listener("web-prod", "web-blue")
        (replica,) = bench.replica_ports("web-blue")
        targets = {"haproxy": bench.url(), "direct": f"http://127.0.0.1:{replica}/"}
        run_wrk(targets["haproxy"], seconds=1, connections=4)  # warm up both paths
        run_wrk(targets["direct"], seconds=1, connections=4)
        out: dict[str, Any] = {}
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
            out[str(c)] = {
                "haproxy": h,
                "direct": d,
                "throughput_ratio": round(h["rps"] / d["rps"], 2),
                "pair_ratios": _ratios(runs["haproxy"], runs["direct"]),
                "p99_added_ms": round(h["p99_ms"] - d["p99_ms"], 2),
                "p50_added_ms": round(h["p50_ms"] - d["p50_ms"], 2),
            }
    return out


def measure(rounds: int = 5, seconds: float = 4.0) -> dict[str, Any]:
    return {
        "rounds": rounds,
        "seconds": seconds,
        "by_backend": {b: measure_backend(b, rounds, seconds) for b in BACKENDS},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args(argv)
    r = measure(args.rounds, args.seconds)
    rows = [
        "| backend | connections | path | requests/s (median, min-max) | p50 | p99 | max "
        "| requests | failed | listen overflows |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    labels = {"sample": "sample service (1 process)", "asgi": "uvicorn ASGI, 2 workers"}
    for backend, by_c in r["by_backend"].items():
        for c, d in by_c.items():
            for name, label in (("haproxy", "HAProxy listener -> replica"), ("direct", "replica")):
                x = d[name]
                rows.append(
                    f"| {labels[backend]} | {c} | {label} | {x['rps']:,.0f} "
                    f"({x['rps_min']:,.0f}-{x['rps_max']:,.0f}) | {x['p50_ms']} ms "
                    f"| {x['p99_ms']} ms | {x['max_ms']} ms | {x['requests']:,} | {x['failed']} "
                    f"| {x['listen_overflows']} |"
                )
            pr = d["pair_ratios"]
            added_us = (1 / d["haproxy"]["rps"] - 1 / d["direct"]["rps"]) * 1e6 * int(c)
            notes.append(
                f"- {labels[backend]}, {c} connection(s): through HAProxy "
                f"{d['throughput_ratio']}x the direct throughput (ratio of medians; pair by "
                f"pair min {pr['min']} / median {pr['median']} / max {pr['max']}); "
                f"P50 {d['p50_added_ms']:+} ms, P99 {d['p99_added_ms']:+} ms; time added per "
                f"request and connection {added_us:,.0f} µs."
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
connection count and backend; medians of the runs (max: the worst of them). The pair-by-pair
ratio divides each HAProxy run by the direct run next to it.

{table}

{chr(10).join(notes)}

HAProxy keeps its server connections alive (`option http-keep-alive`, `http-reuse safe`):
each request is routed by the listener's map on its own, and an idle server connection of the
chosen backend is reused, so the replica is not asked to accept a connection per request (with
`option http-server-close` before, the same table read 0.28x at 1 and 0.30x at 16
connections). Everything runs on the same 2-core machine, shared with other test runs (the
1-minute load average is in the JSON): wrk, HAProxy and the backend compete for the CPU.

With 16 connections the ratio is the CPU HAProxy takes from a CPU-bound backend. With one
connection it is latency: each request waits for two more loopback hops and two more process
wake-ups. The sample service answers `/` in about 0.1-0.2 ms, so any proxy hop of a few
tenths of a millisecond halves one connection's throughput (0.8x would need under 25-50 µs
added per request); the slower ASGI backend shows the same hop as a smaller share. On a
machine this loaded a wake-up alone can take longer than the request, which is why the
pair-by-pair ratios spread so widely.

Goals (≥ 0.8x at 1 and 16 connections, P99 added ≤ 1 ms): met only by the multi-worker
backend at 16 connections; not met at 1 connection (the hop's latency, above) nor by the
single-process sample service at 16 (HAProxy's CPU taken from it). P99 added ≤ 1 ms: not
met on this loaded machine (see the notes above; the P99 of either path alone moves by more
than that from run to run).

Produced by: `.venv/bin/python bench/overhead.py` (raw: `bench/results/{path.name}`).
""",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
