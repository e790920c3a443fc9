"""A stand-in Kubernetes API server for the Secret REST paths, over HTTP on a loopback port.

It speaks what :class:`~deployops.drivers.kubernetes_secrets.KubernetesSecretStore` sends through
the official client: read, create, replace (with ``resourceVersion`` conflict checks, 409) and
list by label selector of ``/api/v1/namespaces/{ns}/secrets``.

What it cannot show (a real cluster would): authentication and RBAC (a token without
``secrets`` verbs is not refused here), admission webhooks, encryption at rest, the 1 MiB object
limit, watch semantics, and how kubelet propagates a changed Secret to mounted volumes (pods
reading env variables need a restart, as on ECS).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

__all__ = ["KubeStandIn"]

_ITEM = re.compile(r"^/api/v1/namespaces/([^/]+)/secrets/([^/]+)$")
_COLL = re.compile(r"^/api/v1/namespaces/([^/]+)/secrets$")


class KubeStandIn:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.version = 0
        self.requests: list[tuple[str, str]] = []
        self.fail_next: list[int] = []  # statuses to answer the next requests with
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _status(self, code: int, reason: str, message: str) -> None:
                self._send(
                    code,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "reason": reason,
                        "message": message,
                        "code": code,
                    },
                )

            def _body(self) -> dict[str, Any]:
                n = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(n) or b"{}")

            def _handle(self, method: str) -> None:
                url = urlparse(self.path)
                stand_in.requests.append((method, url.path))
                with stand_in.lock:
                    if stand_in.fail_next:
                        code = stand_in.fail_next.pop(0)
                        self._status(code, "ServiceUnavailable", "stand-in told to fail")
                        return
                    item, coll = _ITEM.match(url.path), _COLL.match(url.path)
                    if item and method == "GET":
                        obj = stand_in.objects.get((item[1], item[2]))
                        if obj is None:
                            self._status(404, "NotFound", f'secrets "{item[2]}" not found')
                        else:
                            self._send(200, obj)
                    elif coll and method == "GET":
                        sel = parse_qs(url.query).get("labelSelector", [""])[0]
                        want = dict(p.split("=", 1) for p in sel.split(",") if "=" in p)
                        items = [
                            o
                            for (ns, _), o in sorted(stand_in.objects.items())
                            if ns == coll[1]
                            and all(
                                (o["metadata"].get("labels") or {}).get(k) == v
                                for k, v in want.items()
                            )
                        ]
                        self._send(
                            200,
                            {
                                "kind": "SecretList",
                                "apiVersion": "v1",
                                "metadata": {},
                                "items": items,
                            },
                        )
                    elif coll and method == "POST":
                        body = self._body()
                        key = (coll[1], body["metadata"]["name"])
                        if key in stand_in.objects:
                            self._status(409, "AlreadyExists", "already exists")
                            return
                        self._store(key, body, 201)
                    elif item and method == "PUT":
                        body = self._body()
                        key = (item[1], item[2])
                        old = stand_in.objects.get(key)
                        if old is None:
                            self._status(404, "NotFound", "not found")
                            return
                        sent = body["metadata"].get("resourceVersion")
                        if sent and sent != old["metadata"]["resourceVersion"]:
                            self._status(409, "Conflict", "the object has been modified")
                            return
                        self._store(key, body, 200)
                    else:
                        self._status(405, "MethodNotAllowed", f"{method} {url.path}")

            def _store(self, key: tuple[str, str], body: dict[str, Any], code: int) -> None:
                stand_in.version += 1
                body.setdefault("metadata", {})
                body["metadata"]["resourceVersion"] = str(stand_in.version)
                body["metadata"]["namespace"] = key[0]
                body["kind"], body["apiVersion"] = "Secret", "v1"
                stand_in.objects[key] = body
                self._send(code, body)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PUT(self) -> None:
                self._handle("PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> KubeStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
