"""Shared by the component-fault tests: a bounded loopback load through the production
listener that counts the requests that failed, receivers that are down or hang, a receiver
that answers (on a port of one's choosing, so a receiver can come back where it was), and
a poll for a condition."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from tests.integration.notify.receivers import HttpReceiver, make_handler

__all__ = [
    "HttpReceiver",
    "Load",
    "hanging_receiver",
    "http_receiver",
    "long_fault",
    "loopback_load",
    "refused_port",
    "wait_until",
]

# `make faults` sets DEPLOYOPS_TEST_FAULTS=full: every component fault runs. Each takes tens of
# seconds of real deploys, so `make test` keeps only the quick ones (read at import, before the
# autouse fixture clears DEPLOYOPS_* for the tests themselves).
FULL_FAULTS = os.environ.get("DEPLOYOPS_TEST_FAULTS") == "full"
long_fault = pytest.mark.skipif(
    not FULL_FAULTS, reason="a long component fault: `make faults` runs it"
)


@dataclass
class Load:
    """What a :func:`loopback_load` saw: every request and the ones that failed."""

    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    # the version that answered each successful request (the sample service says it)
    versions: Counter[str] = field(default_factory=Counter)
    # (monotonic time, ok) of every request, to see when failures happened
    timeline: list[tuple[float, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, ok: bool, what: str = "", version: str = "") -> None:
        with self.lock:
            self.sent += 1
            self.timeline.append((time.monotonic(), ok))
            if version:
                self.versions[version] += 1
            if not ok:
                self.failed += 1
                if len(self.errors) < 20:
                    self.errors.append(what)

    def failed_between(self, start: float, end: float) -> int:
        with self.lock:
            return sum(1 for t, ok in self.timeline if start <= t <= end and not ok)


@contextmanager
def loopback_load(port: int, *, rate_per_s: float = 20.0) -> Iterator[Load]:
    """GET / on ``127.0.0.1:port`` at about ``rate_per_s`` (bounded: one client, one request
    at a time, 2 s timeout) until the block ends. A request fails on a non-200 or no answer."""
    load = Load()
    stop = threading.Event()

    def run() -> None:
        with httpx.Client(timeout=2.0) as client:
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    r = client.get(f"http://127.0.0.1:{port}/")
                    load.record(r.status_code == 200, f"HTTP {r.status_code}", _version(r))
                except httpx.HTTPError as exc:
                    load.record(False, type(exc).__name__)
                stop.wait(max(0.0, 1.0 / rate_per_s - (time.monotonic() - t0)))

    th = threading.Thread(target=run, name="loopback-load", daemon=True)
    th.start()
    try:
        yield load
    finally:
        stop.set()
        th.join(timeout=10)


def _version(r: httpx.Response) -> str:
    if r.status_code != 200:
        return ""
    try:
        return str(r.json().get("version", ""))
    except ValueError:
        return ""


@contextmanager
def hanging_receiver() -> Iterator[str]:
    """An HTTP endpoint that accepts connections and never answers (reads nothing, closes
    nothing) until the block ends: the worst a webhook receiver can do. Yields its URL base."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(128)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    th = threading.Thread(target=accept, name="hanging-receiver", daemon=True)
    th.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        stop.set()
        th.join(timeout=5)
        for c in held:
            c.close()
        srv.close()


def refused_port() -> int:
    """A loopback port nothing listens on (a receiver that is down: connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def http_receiver(port: int = 0) -> Iterator[HttpReceiver]:
    """A Slack / PagerDuty stand-in that answers (``receivers.HttpReceiver``) on ``port``."""
    from http.server import ThreadingHTTPServer

    rx = HttpReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(rx))
    server.daemon_threads = True
    rx.port = int(server.server_address[1])
    th = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    th.start()
    try:
        yield rx
    finally:
        server.shutdown()
        server.server_close()
        th.join(timeout=5)


def wait_until(check: Callable[[], bool], *, timeout_s: float, what: str) -> float:
    """Poll ``check`` every 0.1 s; the seconds it took. Fails naming ``what``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if check():
            return time.monotonic() - t0
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout_s:g}s")
