"""A multi-worker ASGI backend for the overhead benchmark: the same ``/`` and ``/health``
answers as the sample service, served by uvicorn with several worker processes, so the cost
of the proxy can be seen apart from the single-process sample service's.

    PORT=8000 WORKERS=2 python bench/_asgi_backend.py
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from typing import Any

VERSION = os.environ.get("APP_VERSION", "0.0.0")


async def app(scope: dict[str, Any], _receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    status = 200 if path in ("/", "/health") else 404
    body = json.dumps({"version": VERSION, "pid": os.getpid()}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _worker(port: int) -> None:
    """One uvicorn worker on its own ``SO_REUSEPORT`` socket (the kernel spreads connections).

    uvicorn's own ``workers=`` hands the parent's socket to its children, and asyncio does not
    set ``TCP_NODELAY`` on connections accepted from such a socket (its protocol reads 0):
    headers and body then go out as two segments and Nagle holds the body back for the
    client's delayed ACK, 40 ms a request."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(512)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    port = int(os.environ.get("PORT", "8000"))
    if "--worker" in sys.argv:
        _worker(port)
        return
    workers = [
        subprocess.Popen([sys.executable, __file__, "--worker"])
        for _ in range(int(os.environ.get("WORKERS", "2")))
    ]

    def stop(_sig: int, _frame: object) -> None:
        for w in workers:
            w.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for w in workers:
        w.wait()


if __name__ == "__main__":
    main()
