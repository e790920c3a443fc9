#!/usr/bin/env python3
"""A small HTTP service to deploy with deployops, with fault switches chosen per version.

Endpoints: ``/`` (the app: JSON with version and replica), ``/health`` (200 when healthy),
``/metrics`` (Prometheus text: requests, errors, rss). Settings come from the environment:

============================  =========================================================
``PORT``                      port to listen on (the platform sets it per replica)
``APP_VERSION``               version reported by ``/`` and ``/health``
``FAULT_ERROR_RATE``          share of ``/`` requests answered 500 (``0.2`` = 20 %)
``FAULT_LATENCY_MS``          extra delay of every ``/`` request, in milliseconds
``FAULT_LEAK_MB_PER_S``       memory leaked per second (for the memory rules)
``FAULT_CPU``                 ``1`` burns CPU in a background thread (for auto scaling)
``FAULT_CPU_MS_PER_REQUEST``  CPU time every ``/`` request burns, in milliseconds: the
                              load follows the traffic and stops when it stops (IAC-5)
``FAULT_CRASH_ON_START``      ``1`` exits with status 3 right after start
``FAULT_HEALTH_FAIL``         ``1`` answers ``/health`` with 503
``FAULT_START_DELAY_S``       seconds to wait before listening (slow start)
============================  =========================================================

Standard library only, so it runs anywhere Python does.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("APP_VERSION", "0.0.0")
REPLICA = os.environ.get("DEPLOYOPS_TASK_ID", str(os.getpid()))
ERROR_RATE = float(os.environ.get("FAULT_ERROR_RATE", "0") or 0)
LATENCY_S = float(os.environ.get("FAULT_LATENCY_MS", "0") or 0) / 1000.0
LEAK_MB_PER_S = float(os.environ.get("FAULT_LEAK_MB_PER_S", "0") or 0)
BURN_CPU = os.environ.get("FAULT_CPU", "") == "1"
CPU_S_PER_REQUEST = float(os.environ.get("FAULT_CPU_MS_PER_REQUEST", "0") or 0) / 1000.0
HEALTH_FAIL = os.environ.get("FAULT_HEALTH_FAIL", "") == "1"

_counts = {"requests": 0, "errors": 0}
_lock = threading.Lock()
_leak: list[bytes] = []
_health_fail = HEALTH_FAIL


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without this, Nagle's algorithm holds the body
    # back until the client's delayed ACK (~40 ms per keep-alive request).
    disable_nagle_algorithm = True
    server_version = f"sample-service/{VERSION}"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the platform measures requests at the load balancer."""

    def _send(self, status: int, body: dict[str, object] | str, ctype: str = "") -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype or "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        global _health_fail
        path = self.path.split("?", 1)[0]
        if path == "/health":
            if _health_fail:
                self._send(503, {"status": "unhealthy", "version": VERSION})
            else:
                self._send(200, {"status": "ok", "version": VERSION})
            return
        if path == "/metrics":
            with _lock:
                text = (
                    f"sample_requests_total {_counts['requests']}\n"
                    f"sample_errors_total {_counts['errors']}\n"
                    f"sample_leaked_bytes {sum(len(b) for b in _leak)}\n"
                )
            self._send(200, text, "text/plain; version=0.0.4")
            return
        if path == "/fault/health-fail":  # flip health at run time (tests of DR-3)
            _health_fail = True
            self._send(200, {"health_fail": True})
            return
        if path != "/":
            self._send(404, {"error": "not found", "path": path})
            return
        if LATENCY_S:
            time.sleep(LATENCY_S)
        if CPU_S_PER_REQUEST:
            _burn(CPU_S_PER_REQUEST)
        failed = ERROR_RATE > 0 and random.random() < ERROR_RATE
        with _lock:
            _counts["requests"] += 1
            _counts["errors"] += int(failed)
        if failed:
            self._send(500, {"error": "injected failure", "version": VERSION})
        else:
            self._send(200, {"version": VERSION, "replica": REPLICA})


def _leaker() -> None:
    while True:
        _leak.append(b"x" * int(LEAK_MB_PER_S * 1024 * 1024))
        time.sleep(1.0)


def _burn(seconds: float) -> None:
    """Spend ``seconds`` of this thread's CPU time (not wall time: under contention for the
    interpreter lock a request takes longer, it does not burn less)."""
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        for _ in range(1000):
            x = (x * 31 + 7) % 1_000_003


def _burner() -> None:
    x = 0
    while True:
        x = (x * 31 + 7) % 1_000_003


def main() -> None:
    if os.environ.get("FAULT_CRASH_ON_START") == "1":
        sys.stderr.write(f"sample-service {VERSION}: crashing on start (FAULT_CRASH_ON_START)\n")
        sys.exit(3)
    delay = float(os.environ.get("FAULT_START_DELAY_S", "0") or 0)
    if delay:
        time.sleep(delay)
    port = int(os.environ.get("PORT", "3000"))
    if LEAK_MB_PER_S:
        threading.Thread(target=_leaker, daemon=True).start()
    if BURN_CPU:
        threading.Thread(target=_burner, daemon=True).start()
    # The default listen backlog of 5 overflows when the load balancer opens a connection
    # per request; dropped SYNs come back after 1-3 s as tail latency.
    ThreadingHTTPServer.request_queue_size = 512
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    sys.stderr.write(f"sample-service {VERSION} listening on 127.0.0.1:{port}\n")
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
