"""A bounded loopback load generator for the demo, the benchmarks and the end-to-end tests.

Keep-alive clients in threads send GET requests to one URL until stopped, a time limit or a
request limit; each response is counted by status and by the ``version`` field of its JSON
body (the sample service's), with its latency. Only loopback targets are accepted.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

__all__ = ["Load", "LoadResult"]

_LOOPBACK = ("127.", "localhost", "[::1]", "::1")


@dataclass
class LoadResult:
    ok: int = 0
    failed: int = 0
    by_version: dict[str, int] = field(default_factory=dict)
    # failed requests whose body named the version that answered (the sample service's 500s)
    failed_by_version: dict[str, int] = field(default_factory=dict)
    by_status: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    # (monotonic time, version) of the first response seen from each version
    first_seen: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.ok + self.failed

    def reached(self, version: str) -> int:
        """Requests answered by ``version``, failed or not."""
        return self.by_version.get(version, 0) + self.failed_by_version.get(version, 0)

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(q / 100 * len(data)))]


class Load:
    """``with Load(url) as load: ...`` then ``load.result``."""

    def __init__(
        self,
        url: str,
        *,
        workers: int = 4,
        max_seconds: float = 300.0,
        max_requests: int = 5_000_000,
        keep_alive: bool = True,
        timeout_s: float = 5.0,
    ) -> None:
        host = urlsplit(url).hostname or ""
        if not host.startswith(_LOOPBACK):
            raise ValueError(f"load is only sent to loopback addresses, not {host!r}")
        self.url = url
        self.workers = workers
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.keep_alive = keep_alive
        self.timeout_s = timeout_s
        self.result = LoadResult()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._sent = 0

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        limits = httpx.Limits(max_keepalive_connections=1 if self.keep_alive else 0)
        with httpx.Client(timeout=self.timeout_s, trust_env=False, limits=limits) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                with self._lock:
                    if self._sent >= self.max_requests:
                        return
                    self._sent += 1
                began = time.perf_counter()
                version, status, error = "", 0, ""
                try:
                    r = client.get(self.url)
                    status = r.status_code
                    try:
                        body = r.json()
                        version = str(body.get("version", "")) if isinstance(body, dict) else ""
                    except ValueError:
                        version = ""
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                ms = (time.perf_counter() - began) * 1000
                now = time.monotonic()
                with self._lock:
                    res = self.result
                    res.latencies_ms.append(ms)
                    res.by_status[status] = res.by_status.get(status, 0) + 1
                    if status == 200:
                        res.ok += 1
                        res.by_version[version] = res.by_version.get(version, 0) + 1
                        res.first_seen.setdefault(version, now)
                    else:
                        res.failed += 1
                        if version:
                            res.failed_by_version[version] = (
                                res.failed_by_version.get(version, 0) + 1
                            )
                        if error and len(res.errors) < 20:
                            res.errors.append(error)

    def start(self) -> Load:
        self._threads = [
            threading.Thread(target=self._run, daemon=True, name=f"load-{i}")
            for i in range(self.workers)
        ]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> LoadResult:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout_s + 5)
        return self.result

    def snapshot(self) -> tuple[int, int, dict[str, int]]:
        with self._lock:
            return self.result.ok, self.result.failed, dict(self.result.by_version)

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
