"""The drivers' side of the daemon API: JSON over loopback HTTP, errors rebuilt as ours."""

from __future__ import annotations

from typing import Any

import httpx

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
        self._http: httpx.Client | None = None
        self._base = ""

    def _unavailable(self, why: str) -> PlatformUnavailableError:
        return PlatformUnavailableError(
            f"the local platform for environment {self.environment!r} is not running ({why})",
            path="environments." + self.environment,
            hint=f"deployops local up -e {self.environment}",
        )

    def _client(self) -> httpx.Client:
        info = read_json(self.paths.daemon_json)
        if not info or not info.get("api"):
            self.close()
            raise self._unavailable(f"no {self.paths.daemon_json}")
        if self._http is None or self._base != info["api"]:
            self.close()
            self._base = str(info["api"])
            self._http = httpx.Client(base_url=self._base, timeout=self.timeout_s)
        return self._http

    def call(self, method: str, **params: Any) -> Any:
        client = self._client()
        try:
            resp = client.post("/rpc", json={"method": method, "params": params})
        except httpx.TransportError as exc:
            self.close()
            raise self._unavailable(f"its API at {self._base} did not answer: {exc}") from exc
        body = resp.json()
        if not body.get("ok"):
            raise error_from_json(body.get("error") or {})
        return body.get("result")

    def ping(self) -> bool:
        try:
            return bool(self._client().get("/ping", timeout=2.0).status_code == 200)
        except (httpx.HTTPError, DeployopsError):
            return False

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
