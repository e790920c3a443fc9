"""Daemon API call latency, side by side: the daemon's request handler (HTTP/1.1, kept-alive,
headers and body in two writes) with and without Nagle's algorithm, called by the drivers'
client (``DaemonClient``: ``http.client``, one send per request) and by httpx (the client
before). Interleaved rounds of 50 calls each on one kept-alive connection.

    .venv/bin/python bench/rpc.py [--rounds 5] [--calls 50]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import update_section, write_result


def _server(nodelay: bool) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = nodelay

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            data = json.dumps({"ok": True, "result": {"name": "web-blue", "desired": 2}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    return srv


def _stdlib(port: int, calls: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps({"method": "describe_service", "params": {"name": "web-blue"}}).encode()
    t0 = time.perf_counter()
    for _ in range(calls):
        conn.request("POST", "/rpc", body=body, headers={"Content-Type": "application/json"})
        json.loads(conn.getresponse().read())
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed / calls * 1000


def _httpx(port: int, calls: int) -> float:
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
        t0 = time.perf_counter()
        for _ in range(calls):
            c.post(
                "/rpc", json={"method": "describe_service", "params": {"name": "web-blue"}}
            ).json()
        return (time.perf_counter() - t0) / calls * 1000


def measure(rounds: int, calls: int) -> dict[str, Any]:
    servers = {"nagle": _server(False), "nodelay": _server(True)}
    each: dict[str, list[float]] = {}
    for _ in range(rounds):
        for sname, srv in servers.items():
            port = int(srv.server_address[1])
            for cname, fn in (("http.client", _stdlib), ("httpx", _httpx)):
                each.setdefault(f"{sname}/{cname}", []).append(fn(port, calls))
    for srv in servers.values():
        srv.shutdown()
    return {
        "rounds": rounds,
        "calls": calls,
        "ms_per_call": {
            k: {
                "min": round(min(v), 2),
                "median": round(statistics.median(v), 2),
                "max": round(max(v), 2),
            }
            for k, v in each.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args(argv)
    r = measure(args.rounds, args.calls)
    print(json.dumps(r, indent=1))
    path = write_result("rpc", r)
    labels = {
        "nagle/httpx": "before: Nagle on, httpx client",
        "nagle/http.client": "Nagle on, http.client",
        "nodelay/httpx": "Nagle off, httpx client",
        "nodelay/http.client": "now: Nagle off, http.client (`DaemonClient`)",
    }
    rows = ["| daemon handler / client | min | median | max |", "|---|---|---|---|"]
    for key, label in labels.items():
        x = r["ms_per_call"][key]
        rows.append(f"| {label} | {x['min']} ms | {x['median']} ms | {x['max']} ms |")
    update_section(
        "Daemon API calls",
        f"""\
One call of the daemon API (JSON over loopback HTTP on a kept-alive connection), its request
handler as the daemon's with and without `disable_nagle_algorithm`, {r["rounds"]} interleaved
rounds of {r["calls"]} calls per combination; milliseconds per call.

{chr(10).join(rows)}

The handler writes the headers and the body separately; with Nagle's algorithm on, the body
waits for the client's delayed ACK of the headers (about 40 ms on Linux). A deployment makes
tens of calls (describe, health, switch, scale), so this alone was most of the CLI's time
around a deployment.

Produced by: `.venv/bin/python bench/rpc.py` (raw: `bench/results/{path.name}`).
""",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
