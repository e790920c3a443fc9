#!/usr/bin/env python3
"""A small HTTP service to deploy with deployops, with fault switches chosen per version.

Endpoints: ``/`` (the app: JSON with version and replica), ``/health`` (200 when healthy),
``/metrics`` (Prometheus text: requests, errors, rss). Settings come from the environment:

============================  =========================================================
``PORT``                      port to listen on (the platform sets it per replica)
``APP_VERSION``               version reported by ``/`` and ``/health``
``FAULT_ERROR_RATE``          share of ``/`` requests answered 500 (``0.2`` = 20 %)
``FAULT_LATENCY_MS``          extra delay of every ``/`` request, in milliseconds
``FAULT_LATENCY_JITTER_MS``   a further random delay of every ``/`` request, exponentially
                              distributed with this mean in milliseconds (a latency
                              distribution with a tail: doubling both knobs doubles its P99)
``FAULT_LEAK_MB_PER_S``       memory leaked per second (for the memory rules)
``FAULT_CPU``                 ``1`` burns CPU in a background thread (for auto scaling)
``FAULT_CPU_MS_PER_REQUEST``  CPU time every ``/`` request burns, in milliseconds: the
                              load follows the traffic and stops when it stops (IAC-5)
``FAULT_CRASH_ON_START``      ``1`` exits with status 3 right after start
``FAULT_HEALTH_FAIL``         ``1`` answers ``/health`` with 503
``FAULT_START_DELAY_S``       seconds to wait before listening (slow start)
``FAULT_EXIT_ON_SIGTERM``     ``1`` exits at once on SIGTERM, cutting requests in flight
                              (what a service without a graceful stop does)
``SHUTDOWN_GRACE_S``          how long a stop waits for requests in flight (default ``4``,
                              under the local platform's 5 s before SIGKILL)
``FAULT_DEGRADE_AFTER_S``     the error-rate and latency faults start this many seconds
                              after the replica started (a release that degrades later)
``DB_HOST``                   PostgreSQL host: when set, the service keeps its items in
                              the database (see below); when unset it has no database
``DB_PORT``                   PostgreSQL port (default ``5432``)
``DB_NAME``                   database name (default ``app``)
``DB_USER``                   database user (default ``app``)
``DB_PASSWORD``               database password (never logged or echoed)
============================  =========================================================

With a database (``DB_HOST`` set) three more endpoints exist: ``POST /items`` (body
``{"body": "..."}`` → 201 with the stored row), ``GET /items?after=ID&limit=N`` (rows in id
order) and ``GET /items/ID``; ``/health`` then also checks the database (503 with
``"database": "unreachable"`` when it cannot be reached). The table ``items`` is created on
first use.

On SIGTERM (or SIGINT) the service stops gracefully: it stops accepting connections (new
ones are refused, so the load balancer tries another replica), answers ``/health`` with 503,
finishes the requests in flight (each answered with ``Connection: close``) for up to
``SHUTDOWN_GRACE_S``, closes idle keep-alive and database connections, then exits 0. A
restart during a deploy or a secret rotation then loses no request even when the platform's
own drain gives up before a slow request ends.

Standard library only without a database, so it runs anywhere Python does; the database part
imports psycopg (3) only when ``DB_HOST`` is set.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("APP_VERSION", "0.0.0")
REPLICA = os.environ.get("DEPLOYOPS_TASK_ID", str(os.getpid()))
ERROR_RATE = float(os.environ.get("FAULT_ERROR_RATE", "0") or 0)
LATENCY_S = float(os.environ.get("FAULT_LATENCY_MS", "0") or 0) / 1000.0
JITTER_S = float(os.environ.get("FAULT_LATENCY_JITTER_MS", "0") or 0) / 1000.0
LEAK_MB_PER_S = float(os.environ.get("FAULT_LEAK_MB_PER_S", "0") or 0)
BURN_CPU = os.environ.get("FAULT_CPU", "") == "1"
CPU_S_PER_REQUEST = float(os.environ.get("FAULT_CPU_MS_PER_REQUEST", "0") or 0) / 1000.0
HEALTH_FAIL = os.environ.get("FAULT_HEALTH_FAIL", "") == "1"
DEGRADE_AFTER_S = float(os.environ.get("FAULT_DEGRADE_AFTER_S", "0") or 0)
STARTED = time.monotonic()

_counts = {"requests": 0, "errors": 0}
_lock = threading.Lock()
_leak: list[bytes] = []
_health_fail = HEALTH_FAIL


class GracefulServer(ThreadingHTTPServer):
    """A threading HTTP server that can stop without cutting a request: it counts the
    requests in flight and the open connections, and :meth:`stop_gracefully` stops
    accepting, waits for the requests in flight, then closes what is left."""

    daemon_threads = True
    # The default listen backlog of 5 overflows when the load balancer opens a connection
    # per request; dropped SYNs come back after 1-3 s as tail latency.
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.draining = threading.Event()
        self._state = threading.Condition()
        self._in_flight = 0
        self._connections: set[socket.socket] = set()

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        with self._state:
            self._connections.add(request)
        super().process_request(request, client_address)  # type: ignore[arg-type]

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._state:
            self._connections.discard(request)
        super().shutdown_request(request)

    def request_started(self) -> None:
        with self._state:
            self._in_flight += 1

    def request_finished(self) -> None:
        with self._state:
            self._in_flight -= 1
            self._state.notify_all()

    def stop_gracefully(self, grace_s: float) -> tuple[int, int]:
        """Stop accepting, let the requests in flight finish (up to ``grace_s``), close the
        idle connections. Returns how many requests were in flight when the stop began and
        how many were still running at the deadline."""
        self.draining.set()
        self.shutdown()  # the accept loop ends
        self.socket.close()  # new connections are refused: the balancer retries elsewhere
        deadline = time.monotonic() + grace_s
        with self._state:
            began = self._in_flight
            while self._in_flight and time.monotonic() < deadline:
                self._state.wait(timeout=max(0.0, deadline - time.monotonic()))
            left = self._in_flight
            connections = list(self._connections)
        for conn in connections:  # idle keep-alive connections waiting for a next request
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        return began, left


def serve_until_stopped(
    server: GracefulServer, *, grace_s: float, on_stop: list[object] | None = None
) -> int:
    """Serve until SIGTERM or SIGINT, then stop gracefully and close ``on_stop`` (objects
    with ``close()``, e.g. database pools). Returns the exit status (0 when no request had
    to be cut)."""
    stop = threading.Event()
    if os.environ.get("FAULT_EXIT_ON_SIGTERM") != "1":
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    loop = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="accept", daemon=True
    )
    loop.start()
    while not stop.wait(0.5):
        if not loop.is_alive():
            return 1
    began, left = server.stop_gracefully(grace_s)
    for thing in on_stop or ():
        with contextlib.suppress(Exception):
            thing.close()  # type: ignore[attr-defined]
    server.server_close()
    if left:
        sys.stderr.write(
            f"stopped: {left} of {began} request(s) still running after {grace_s:g}s\n"
        )
    else:
        sys.stderr.write(f"stopped gracefully: {began} request(s) in flight, all answered\n")
    return 0 if left == 0 else 1


class GracefulHandler(BaseHTTPRequestHandler):
    """Counts each request in flight on its :class:`GracefulServer` and, while the server
    stops, answers with ``Connection: close``."""

    _counted = False

    def parse_request(self) -> bool:
        ok = super().parse_request()
        if ok and isinstance(self.server, GracefulServer):
            self.server.request_started()  # a request is in flight until it is answered
            self._counted = True
        return ok

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        finally:
            if self._counted and isinstance(self.server, GracefulServer):
                self._counted = False
                self.server.request_finished()

    def end_headers(self) -> None:
        if isinstance(self.server, GracefulServer) and self.server.draining.is_set():
            self.send_header("Connection", "close")  # stopping: no next request on it
        super().end_headers()

    def _draining(self) -> bool:
        return isinstance(self.server, GracefulServer) and self.server.draining.is_set()


class Handler(GracefulHandler):
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
            if self._draining():
                self._send(503, {"status": "stopping", "version": VERSION})
            elif _health_fail:
                self._send(503, {"status": "unhealthy", "version": VERSION})
            elif DB is not None:
                ok = DB.ping()
                self._send(
                    200 if ok else 503,
                    {
                        "status": "ok" if ok else "unhealthy",
                        "version": VERSION,
                        "database": "ok" if ok else "unreachable",
                    },
                )
            else:
                self._send(200, {"status": "ok", "version": VERSION})
            return
        if DB is not None and (path == "/items" or path.startswith("/items/")):
            self._send(*DB.handle_get(self.path))
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
        degraded = time.monotonic() - STARTED >= DEGRADE_AFTER_S
        delay = (LATENCY_S if degraded else 0.0) + (
            random.expovariate(1.0 / JITTER_S) if JITTER_S else 0.0
        )
        if delay:
            time.sleep(delay)
        if CPU_S_PER_REQUEST:
            _burn(CPU_S_PER_REQUEST)
        failed = degraded and ERROR_RATE > 0 and random.random() < ERROR_RATE
        with _lock:
            _counts["requests"] += 1
            _counts["errors"] += int(failed)
        if failed:
            self._send(500, {"error": "injected failure", "version": VERSION})
        else:
            self._send(200, {"version": VERSION, "replica": REPLICA})

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length", "0") or 0)
        raw = self.rfile.read(length) if length else b""
        if DB is None or path != "/items":
            self._send(404, {"error": "not found", "path": path})
            return
        self._send(*DB.handle_post(raw))


# ---------------------------------------------------------------------------------------------
# Database part: only active when DB_HOST is set. Everything that touches PostgreSQL is below
# this line and above the next one; without DB_HOST the service behaves as it always has.
# ---------------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id BIGSERIAL PRIMARY KEY,
    body TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
)
"""
_MAX_LIMIT = 1000


class Database:
    """A small pool of autocommit psycopg connections to one PostgreSQL database.

    Connection errors are answered as 503 and the connection is dropped, so a database that
    comes back (or a replica restarted with a new ``DB_HOST``) is used again without a restart.
    The password never appears in a response or a log line: errors name only their type.
    """

    def __init__(self, *, host: str, port: int, name: str, user: str, password: str) -> None:
        import psycopg  # only with a database: the rest of the service is standard library

        self._psycopg = psycopg
        self._kwargs: dict[str, object] = {
            "host": host,
            "port": port,
            "dbname": name,
            "user": user,
            "connect_timeout": 2,
            "autocommit": True,
            "application_name": f"sample-service/{VERSION}",
        }
        if password:
            self._kwargs["password"] = password
        self._idle: list[object] = []
        self._pool_lock = threading.Lock()
        self._schema_ready = False

    def _get(self) -> object:
        with self._pool_lock:
            if self._idle:
                return self._idle.pop()
        conn = self._psycopg.connect(**self._kwargs)
        if not self._schema_ready:
            with conn.transaction():
                # Replicas start together: serialise the CREATE so two do not race on pg_type.
                conn.execute("SELECT pg_advisory_xact_lock(4242)")
                conn.execute(_SCHEMA)
            self._schema_ready = True
        return conn

    def close(self) -> None:
        """Close the idle connections (the service is stopping)."""
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()  # type: ignore[attr-defined]

    def _put(self, conn: object) -> None:
        with self._pool_lock:
            if len(self._idle) < 8:
                self._idle.append(conn)
                return
        conn.close()  # type: ignore[attr-defined]

    def _run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        conn = self._get()
        try:
            cur = conn.execute(sql, params)  # type: ignore[attr-defined]
            rows = cur.fetchall() if cur.description else []
        except BaseException:
            with contextlib.suppress(Exception):
                conn.close()  # type: ignore[attr-defined]
            raise
        self._put(conn)
        return rows

    def ping(self) -> bool:
        try:
            self._run("SELECT 1")
        except self._psycopg.Error:
            return False
        return True

    @staticmethod
    def _row(row: tuple[object, ...]) -> dict[str, object]:
        created = row[2]
        return {
            "id": row[0],
            "body": row[1],
            "created_at": created.isoformat() if hasattr(created, "isoformat") else str(created),
        }

    def _unavailable(self, exc: Exception) -> tuple[int, dict[str, object]]:
        return 503, {"error": "database unavailable", "kind": type(exc).__name__}

    def handle_post(self, raw: bytes) -> tuple[int, dict[str, object]]:
        try:
            doc = json.loads(raw or b"{}")
        except ValueError:
            return 400, {"error": 'body must be JSON like {"body": "text"}'}
        body = doc.get("body") if isinstance(doc, dict) else None
        if not isinstance(body, str) or not body:
            return 400, {"error": 'body must be JSON like {"body": "text"}'}
        try:
            rows = self._run(
                "INSERT INTO items (body) VALUES (%s) RETURNING id, body, created_at", (body,)
            )
        except self._psycopg.Error as exc:
            return self._unavailable(exc)
        return 201, self._row(rows[0])

    def handle_get(self, raw_path: str) -> tuple[int, dict[str, object]]:
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(raw_path)
        query = parse_qs(parts.query)
        try:
            item_id = int(parts.path[len("/items/") :]) if parts.path != "/items" else None
            after = int(query.get("after", ["0"])[0])
            limit = min(_MAX_LIMIT, max(1, int(query.get("limit", ["100"])[0])))
        except ValueError:
            return 400, {"error": "ids, after and limit must be whole numbers"}
        try:
            if item_id is not None:
                rows = self._run("SELECT id, body, created_at FROM items WHERE id = %s", (item_id,))
                if not rows:
                    return 404, {"error": "no such item", "id": item_id}
                return 200, self._row(rows[0])
            rows = self._run(
                "SELECT id, body, created_at FROM items WHERE id > %s ORDER BY id LIMIT %s",
                (after, limit),
            )
        except self._psycopg.Error as exc:
            return self._unavailable(exc)
        return 200, {"items": [self._row(r) for r in rows], "count": len(rows)}


def _database_from_env() -> Database | None:
    host = os.environ.get("DB_HOST", "")
    if not host:
        return None
    return Database(
        host=host,
        port=int(os.environ.get("DB_PORT", "5432") or 5432),
        name=os.environ.get("DB_NAME", "app") or "app",
        user=os.environ.get("DB_USER", "app") or "app",
        password=os.environ.get("DB_PASSWORD", ""),
    )


DB: Database | None = None

# ---------------------------------------------------------------------------------------------
# End of the database part.
# ---------------------------------------------------------------------------------------------


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
    global DB
    DB = _database_from_env()
    if LEAK_MB_PER_S:
        threading.Thread(target=_leaker, daemon=True).start()
    if BURN_CPU:
        threading.Thread(target=_burner, daemon=True).start()
    server = GracefulServer(("127.0.0.1", port), Handler)
    where = f" (database {DB._kwargs['host']}:{DB._kwargs['port']})" if DB is not None else ""
    sys.stderr.write(f"sample-service {VERSION} listening on 127.0.0.1:{port}{where}\n")
    grace = float(os.environ.get("SHUTDOWN_GRACE_S", "4") or 4)
    sys.exit(serve_until_stopped(server, grace_s=grace, on_stop=[DB] if DB is not None else []))


if __name__ == "__main__":
    main()
