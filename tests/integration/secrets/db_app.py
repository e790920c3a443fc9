"""A replica that uses the database: every ``/`` and ``/health`` runs a query as ``DB_USER``
with ``DB_PASSWORD`` (read once at start, as an application does) and answers the role it is
logged in as in ``version``, so a load run shows which value each replica serves with."""

from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
from psycopg.conninfo import make_conninfo

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


def _query() -> str:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg.connect(DSN, autocommit=True)
    row = conn.execute("SELECT current_user").fetchone()
    return str(row[0]) if row else ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        try:
            body, status = json.dumps({"version": _query()}).encode(), 200
        except psycopg.Error as exc:
            body, status = json.dumps({"error": type(exc).__name__}).encode(), 503
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    ThreadingHTTPServer.request_queue_size = 512
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    server.daemon_threads = True
    sys.stderr.write("db app listening\n")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
