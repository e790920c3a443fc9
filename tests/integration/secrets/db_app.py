"""A replica that uses the database: every ``/`` and ``/health`` runs a query as ``DB_USER``
with ``DB_PASSWORD`` (read once at start, as an application does) and answers the role it is
logged in as in ``version``, so a load run shows which value each replica serves with. On
SIGTERM it stops as the sample service does (stops accepting, finishes the requests in flight,
closes its database connections, exits)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import weakref
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

# the sample service's graceful stop (examples/sample-service/app.py)
_spec = importlib.util.spec_from_file_location(
    "sample_service", Path(__file__).resolve().parents[3] / "examples" / "sample-service" / "app.py"
)
assert _spec is not None and _spec.loader is not None
sample = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sample)

DSN = make_conninfo(
    "",
    host=os.environ["DB_HOST"],
    port=os.environ["DB_PORT"],
    dbname=os.environ["DB_NAME"],
    user=os.environ["DB_USER"],
    password=os.environ["DB_PASSWORD"],
    connect_timeout="3",
)
_local = threading.local()


# the open connections, without keeping them open: a handler thread's connection closes
# when the thread ends (its thread-local is dropped); a stop closes those still open
_connections: weakref.WeakSet[psycopg.Connection[tuple[object, ...]]] = weakref.WeakSet()
_connections_lock = threading.Lock()


def _query() -> str:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg.connect(DSN, autocommit=True)
        with _connections_lock:
            _connections.add(conn)
    row = conn.execute("SELECT current_user").fetchone()
    return str(row[0]) if row else ""


class _Pool:
    def close(self) -> None:
        with _connections_lock:
            open_now = list(_connections)
        for conn in open_now:
            conn.close()


class Handler(sample.GracefulHandler):  # type: ignore[misc,name-defined]
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        try:
            if self._draining() and self.path.startswith("/health"):
                body, status = json.dumps({"status": "stopping"}).encode(), 503
            else:
                body, status = json.dumps({"version": _query()}).encode(), 200
        except psycopg.Error as exc:
            body, status = json.dumps({"error": type(exc).__name__}).encode(), 503
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    server = sample.GracefulServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    sys.stderr.write("db app listening\n")
    sys.exit(sample.serve_until_stopped(server, grace_s=4.0, on_stop=[_Pool()]))


if __name__ == "__main__":
    main()
