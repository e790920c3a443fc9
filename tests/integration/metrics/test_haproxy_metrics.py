"""The local metrics collector against a real HAProxy and the sample service (metrics
requirement: "the metrics of a replica serving 20 % 500s show an error rate within ±2 points of
20 %"; RB-1 and CHK-2 read ErrorRate and p99 from here)."""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from deployops.clock import SystemClock, utc
from deployops.domain.model import MetricName, MetricQuery, Statistic
from deployops.drivers.local.metrics import (
    LOG_FORMAT,
    LocalMetrics,
    MetricsCollector,
    parse_show_stat,
    read_show_stat,
)
from deployops.store import StateStore

pytestmark = pytest.mark.integration

APP = Path(__file__).resolve().parents[3] / "examples" / "sample-service" / "app.py"
REQUESTS = 4000
WORKERS = 40  # the sample service answers in ~45 ms per keep-alive request (Nagle)
LATENCY_MS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _wait(what: str, check: object, timeout_s: float = 15.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not after {timeout_s}s")


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Short path: a UNIX socket path must fit in 108 bytes.
    d = Path(tempfile.mkdtemp(prefix="dops-m-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def app() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = _free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "PORT": str(port),
        "APP_VERSION": "2.0.0",
        "FAULT_ERROR_RATE": "0.2",
        "FAULT_LATENCY_MS": str(LATENCY_MS),
    }
    proc = subprocess.Popen([sys.executable, str(APP)], env=env, stderr=subprocess.DEVNULL)
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        _wait("sample service healthy", healthy)
        yield proc, port
    finally:
        _stop(proc)


def test_error_rate_of_replica_serving_20_percent_500s_through_haproxy(
    workdir: Path, app: tuple[subprocess.Popen[bytes], int]
) -> None:
    """Done-when of the metrics requirement, end to end: HAProxy logs every request over UDP
    syslog, the collector samples it, LocalMetrics reads ErrorRate 20 % ± 2 and a p99."""
    app_proc, app_port = app
    store = StateStore.open("sqlite:///" + str(workdir / "state.db"))
    admin = workdir / "admin.sock"
    collector = MetricsCollector(
        store=store,
        clock=SystemClock(),
        interval_s=1.0,
        retention_s=3600.0,
        syslog_port=0,
        admin_socket=admin,
        replicas=lambda: {"web-green": [("task-1", app_proc.pid)]},
    )
    front = _free_port()
    collector.start()
    haproxy: subprocess.Popen[bytes] | None = None
    try:
        cfg = workdir / "haproxy.cfg"
        cfg.write_text(
            f"""global
    log 127.0.0.1:{collector.syslog_port} local0 info
    stats socket {admin} mode 600 level admin
defaults
    mode http
    log global
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend web
    bind 127.0.0.1:{front}
    log-format {LOG_FORMAT}
    default_backend web-green
backend web-green
    option httpchk GET /health
    server task-1 127.0.0.1:{app_port} check inter 300ms
    server task-2 127.0.0.1:{_free_port()} check inter 200ms fall 1
"""
        )
        haproxy = subprocess.Popen(
            ["/usr/sbin/haproxy", "-f", str(cfg), "-db"],
            stdout=subprocess.DEVNULL,
            stderr=(workdir / "haproxy.log").open("wb"),
        )

        def settled() -> bool:
            try:
                _, servers = parse_show_stat(read_show_stat(admin))
            except Exception:
                return False
            return {s.server: s.status for s in servers} == {"task-1": "UP", "task-2": "DOWN"}

        _wait("HAProxy up with task-1 UP and task-2 DOWN", settled)
        started = time.time()

        statuses: list[int] = []
        lock = threading.Lock()

        def client(n: int) -> None:
            got: list[int] = []
            with httpx.Client(base_url=f"http://127.0.0.1:{front}", timeout=10) as http:
                for _ in range(n):
                    got.append(http.get("/").status_code)
            with lock:
                statuses.extend(got)

        workers = [
            threading.Thread(target=client, args=(REQUESTS // WORKERS,)) for _ in range(WORKERS)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=120)
        assert len(statuses) == REQUESTS
        served_500 = statuses.count(500)
        assert set(statuses) == {200, 500}

        _wait("every request line received", lambda: collector.stats.requests >= REQUESTS)
        collector.flush()
    finally:
        if haproxy is not None:
            _stop(haproxy)
        collector.stop()
    assert collector.stats.requests == REQUESTS  # not one log line lost

    metrics = LocalMetrics(store=store, clock=SystemClock())
    t0 = utc(math.floor(started) - 5)
    window = int(time.time() - t0.timestamp()) + 5

    def one(metric: MetricName, stat: Statistic, scope: str = "web-green") -> tuple[float, int]:
        got = metrics.query(
            MetricQuery(metric, scope, stat, t0, t0 + timedelta(seconds=window), window)
        )
        assert got.ok, got.error
        (point,) = got.datapoints
        return point.value, point.samples

    rate, n = one(MetricName.ERROR_RATE, Statistic.AVERAGE, "web-green/task-1")
    assert n == REQUESTS
    assert rate == pytest.approx(100 * served_500 / REQUESTS)  # what the users saw, exactly
    assert abs(rate - 20.0) <= 2.0
    assert one(MetricName.ERROR_RATE, Statistic.AVERAGE)[0] == rate  # the target group
    assert one(MetricName.HTTP_5XX, Statistic.SUM)[0] == served_500
    assert one(MetricName.REQUEST_COUNT, Statistic.SUM)[0] == REQUESTS

    p50, _ = one(MetricName.RESPONSE_TIME, Statistic.P50)
    p99, timed = one(MetricName.RESPONSE_TIME, Statistic.P99)
    assert timed == REQUESTS
    assert LATENCY_MS * 0.99 <= p50 <= p99 < 1000

    assert one(MetricName.HEALTHY_HOSTS, Statistic.MINIMUM)[0] == 1
    assert one(MetricName.HEALTH_CHECK_FAILURES, Statistic.MAXIMUM)[0] == 50.0
    cpu, scrapes = one(MetricName.CPU, Statistic.MAXIMUM, "web-green/task-1")
    assert scrapes >= 1
    assert 0 < cpu <= 100 * (os.cpu_count() or 1)  # percent of one core
    mem, _ = one(MetricName.MEMORY, Statistic.AVERAGE, "web-green")
    assert 0 < mem < 100  # a small Python service against the 512 MiB default reservation
    store.close()
