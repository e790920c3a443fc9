"""The drivers' side of the daemon API: JSON over loopback HTTP, errors rebuilt as ours.

The standard library's ``http.client`` on one kept-alive connection: a command-line run makes
tens of calls, and an HTTP client library would cost more to import and set up (TLS context,
certificates) than the calls themselves take on loopback.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from deployops.drivers.local.paths import LocalPaths, read_json
from deployops.errors import (
    ConfigError,
    DeployopsError,
    DriverError,
    NotFoundError,
    PlatformUnavailableError,
    UnsupportedError,
)

__all__ = ["DaemonClient", "error_from_json"]


def error_from_json(err: dict[str, Any]) -> DeployopsError:
    kind = str(err.get("type", "DriverError"))
    message = str(err.get("message", "unknown error"))
    hint = err.get("hint")
    if kind in ("ConfigError", "NotFoundError", "UnsupportedError", "PlatformUnavailableError"):
        cls: type[ConfigError] = {
            "ConfigError": ConfigError,
            "NotFoundError": NotFoundError,
            "UnsupportedError": UnsupportedError,
            "PlatformUnavailableError": PlatformUnavailableError,
        }[kind]
        return cls(message, path=str(err.get("path", "")), hint=hint)
    if kind in ("DriverError", "TimeoutError_"):
        exc = DriverError(
            str(err.get("driver", "local")),
            str(err.get("operation", "")),
            "",
            retryable=bool(err.get("retryable", False)),
            hint=hint,
        )
        exc.message = message
        exc.args = (message,)
        return exc
    return DeployopsError(message, hint=hint)


class DaemonClient:
    """``DaemonClient(paths, "development").call("describe_service", name="web-blue")``."""

    def __init__(self, paths: LocalPaths, environment: str, *, timeout_s: float = 30.0) -> None:
        self.paths = paths
        self.environment = environment
        self.timeout_s = timeout_s
        self._http: http.client.HTTPConnection | None = None
        self._base = ""

    def _unavailable(self, why: str) -> PlatformUnavailableError:
        return PlatformUnavailableError(
            f"the local platform for environment {self.environment!r} is not running ({why})",
            path="environments." + self.environment,
            hint=f"deployops local up -e {self.environment}",
        )

    def _client(self) -> http.client.HTTPConnection:
        info = read_json(self.paths.daemon_json)
        if not info or not info.get("api"):
            self.close()
            raise self._unavailable(f"no {self.paths.daemon_json}")
        if self._http is None or self._base != info["api"]:
            self.close()
            self._base = str(info["api"])
            url = urlsplit(self._base)
            self._http = http.client.HTTPConnection(
                url.hostname or "127.0.0.1", url.port, timeout=self.timeout_s
            )
        return self._http

    def _exchange(
        self, method: str, path: str, body: bytes | None, timeout_s: float
    ) -> tuple[int, bytes]:
        conn = self._client()
        try:
            conn.timeout = timeout_s
            if conn.sock is not None:
                conn.sock.settimeout(timeout_s)
            headers = {"Content-Type": "application/json"} if body is not None else {}
            # headers and a bytes body leave in one send: no Nagle / delayed-ACK stall
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            if resp.will_close:
                self.close()
            return resp.status, data
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise self._unavailable(f"its API at {self._base} did not answer: {exc}") from exc

    def call(self, method: str, **params: Any) -> Any:
        payload = json.dumps({"method": method, "params": params}, default=str).encode()
        _, data = self._exchange("POST", "/rpc", payload, self.timeout_s)
        try:
            body = json.loads(data)
        except ValueError as exc:
            raise self._unavailable(f"its API at {self._base} answered {data[:80]!r}") from exc
        if not body.get("ok"):
            raise error_from_json(body.get("error") or {})
        return body.get("result")

    def ping(self) -> bool:
        try:
            status, _ = self._exchange("GET", "/ping", None, 2.0)
        except DeployopsError:
            return False
        return status == 200

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
