"""The local platform's metrics: log parsing, the collector's samples and the ``Metrics`` port's
periods and statistics (metrics requirement; RB-1 rules and CHK-2 checks read these values)."""

from __future__ import annotations

import itertools
import logging
import math
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from deployops.clock import SystemClock, VirtualClock
from deployops.domain.model import MetricName, MetricQuery, Statistic
from deployops.domain.sketch import LatencySketch
from deployops.drivers.local.metrics import (
    LocalMetrics,
    MetricsCollector,
    RequestLine,
    next_boundary,
    parse_log_line,
    parse_show_stat,
)
from deployops.ports import Metrics
from deployops.store import MetricSample, StateStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    s = StateStore.open("sqlite:///" + str(tmp_path / "state.db"))
    yield s
    s.close()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


def _collector(
    store: StateStore, clock: VirtualClock | SystemClock, tmp_path: Path, **kw: object
) -> MetricsCollector:
    args: dict[str, object] = {
        "store": store,
        "clock": clock,
        "interval_s": 10.0,
        "retention_s": 3600.0,
        "syslog_port": 0,
        "admin_socket": tmp_path / "no-haproxy.sock",  # stats absent: request metrics only
        "replicas": dict,
    }
    args.update(kw)
    return MetricsCollector(**args)  # type: ignore[arg-type]


def _line(backend: str, server: str, status: int, tr: int, ta: int | None = None) -> bytes:
    return (
        f"<134>Jan  1 00:00:00 haproxy[42]: DOPS {backend} {server} {status} {tr} "
        f"{tr + 1 if ta is None else ta}"
    ).encode()


def _by(samples: list[MetricSample], scope: str, metric: MetricName) -> MetricSample:
    (found,) = [s for s in samples if s.scope == scope and s.metric == metric.value]
    return found


# ---------------------------------------------------------------------- parsing
def test_parses_haproxy_syslog_request_line() -> None:
    assert parse_log_line(_line("web-green", "task-1", 503, 17, 20)) == RequestLine(
        "web-green", "task-1", 503, 17, 20
    )


@pytest.mark.parametrize(
    "datagram",
    [
        b"<133>Jan  1 00:00:00 haproxy[42]: Proxy web-green started.",
        b"<134>Jan  1 00:00:00 haproxy[42]: DOPS web-green task-1 200",
        b"<134>Jan  1 00:00:00 haproxy[42]: DOPS web-green task-1 abc 1 2",
        b"",
    ],
)
def test_ignores_lines_that_are_not_request_lines(datagram: bytes) -> None:
    assert parse_log_line(datagram) is None


def test_parses_show_stat_servers_and_their_health() -> None:
    # Header and rows as HAProxy 2.6 writes them (columns trimmed to the ones read).
    text = (
        "# pxname,svname,status,check_status,type,\n"
        "web,FRONTEND,OPEN,,0,\n"
        "web-green,t1,DOWN,L4CON,2,\n"
        "web-green,t2,MAINT,L4CON,2,\n"
        "web-green,t3,no check,,2,\n"
        "web-green,t4,UP 1/3,L7OK,2,\n"
        "web-green,BACKEND,UP,,1,\n"
    )
    backends, servers = parse_show_stat(text)
    assert backends == ["web-green"]
    assert [(s.server, s.up, s.down, s.maint, s.checked) for s in servers] == [
        ("t1", False, True, False, True),
        ("t2", False, False, True, True),
        ("t3", True, False, False, False),
        ("t4", True, False, False, True),
    ]


def test_show_stat_without_header_is_refused() -> None:
    with pytest.raises(ValueError, match="CSV header"):
        parse_show_stat("Unknown command\n")


# ---------------------------------------------------------------------- collector
def test_error_rate_of_a_replica_serving_20_percent_500s(
    store: StateStore, clock: VirtualClock, tmp_path: Path
) -> None:
    """The metrics requirement's "done when", at the collector: 20 % 500s read as 20 %."""
    c = _collector(store, clock, tmp_path)
    rng = random.Random(7)
    for i in range(1000):
        c.ingest(_line("web-green", "task-1", 500 if i % 5 == 0 else 200, rng.randint(1, 50)))
    c.ingest(_line("web-green", "<NOSRV>", 503, -1))  # HAProxy's own 503: no server, no latency
    clock.advance(10)
    samples = c.flush()

    rate = _by(samples, "web-green", MetricName.ERROR_RATE)
    assert rate.count == 1001
    assert rate.value == pytest.approx(100 * 201 / 1001)
    assert _by(samples, "web-green", MetricName.HTTP_5XX).value == 201
    replica = _by(samples, "web-green/task-1", MetricName.ERROR_RATE)
    assert (replica.value, replica.count) == (20.0, 1000)
    latency = _by(samples, "web-green", MetricName.RESPONSE_TIME)
    assert latency.count == 1000  # the aborted request has no response time
    assert latency.sketch is not None
    assert 1 <= LatencySketch.from_json(latency.sketch).quantile(0.99) <= 50
    assert len(store.samples("web-green", "ErrorRate", 0, math.inf)) == 1


def test_silent_backend_gets_zero_samples_not_missing_data(
    store: StateStore, clock: VirtualClock, tmp_path: Path
) -> None:
    c = _collector(store, clock, tmp_path)
    c.ingest(_line("web-blue", "task-9", 200, 3))
    clock.advance(10)
    c.flush()
    clock.advance(10)
    quiet = c.flush()
    assert _by(quiet, "web-blue", MetricName.REQUEST_COUNT).value == 0
    silence = _by(quiet, "web-blue", MetricName.ERROR_RATE)
    assert (silence.value, silence.count) == (0.0, 0)
    assert _by(quiet, "web-blue", MetricName.RESPONSE_TIME).sketch is None


def test_samples_are_stamped_with_their_interval_start_and_pruned_after_retention(
    store: StateStore, clock: VirtualClock, tmp_path: Path
) -> None:
    c = _collector(store, clock, tmp_path, retention_s=60.0)
    t0 = clock.now().timestamp()
    c.ingest(_line("web", "a", 200, 1))
    clock.advance(10)
    first = c.flush()
    assert {s.ts for s in first} == {t0}  # the first interval starts at construction
    clock.advance(60)
    c.flush()  # now t0 + 70: samples before t0 + 10 are past the 60 s retention
    kept = store.samples("web", "RequestCount", 0, math.inf)
    assert [s.ts for s in kept] == [t0 + 10]


def test_sampler_closes_intervals_on_the_wall_clock_grid(store: StateStore, tmp_path: Path) -> None:
    """RB-1 reaction: the sampler closes an interval at every multiple of the interval on the
    wall clock (not at multiples from the daemon's start), so a rule period on that grid is
    complete the moment it ends."""
    assert next_boundary(1000.25, 0.5) == 1000.5
    assert next_boundary(1000.5, 0.5) == 1001.0
    c = _collector(store, SystemClock(), tmp_path, interval_s=0.2)
    c.start()
    try:
        c.ingest(_line("web", "a", 200, 1))  # from now on "web" gets a sample every interval

        def written() -> list[float]:
            return [s.ts for s in store.samples("web", "RequestCount", 0, math.inf)]

        deadline = time.monotonic() + 20
        while len(written()) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        c.stop()
    stamps = written()
    assert len(stamps) >= 4, stamps
    # the first interval starts at start(); every later one on a boundary of the grid
    for ts in stamps[1:4]:
        assert abs(ts / 0.2 - round(ts / 0.2)) < 1e-6, stamps
    # consecutive intervals (a busy machine may skip one, never stamps between boundaries)
    assert all(b - a >= 0.2 - 1e-6 for a, b in itertools.pairwise(stamps[1:])), stamps


def test_receives_request_lines_over_udp_syslog(
    store: StateStore, clock: VirtualClock, tmp_path: Path
) -> None:
    c = _collector(store, clock, tmp_path)
    c.start()
    try:
        port = c.syslog_port
        assert port > 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for i in range(500):
                tx.sendto(
                    _line("web-green", "task-1", 500 if i < 100 else 200, 5), ("127.0.0.1", port)
                )
            tx.sendto(
                b"<134>Jan  1 00:00:00 haproxy[42]: Server web-green/task-1 is UP",
                ("127.0.0.1", port),
            )
        deadline = time.monotonic() + 5
        while c.stats.datagrams < 501 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert c.stats.requests == 500
        assert c.stats.ignored == 1
    finally:
        c.stop()  # writes the last interval
    rate = store.samples("web-green", "ErrorRate", 0, math.inf)
    assert [(s.value, s.count) for s in rate] == [(20.0, 500)]


@pytest.mark.parametrize(
    ("datagram", "counted"),
    [
        (_line("web", "a", 200, 4), True),
        (_line("web", "a", 504, -1, 5000), True),  # server timeout: 5xx without latency
        (_line("web", "<NOSRV>", -1, -1, 0), True),  # client aborted before any response
        (b"<134>Jan  1 00:00:00 haproxy[42]: DOPS web a 2x0 1 2", False),
        (b"<134>Jan  1 00:00:00 haproxy[42]: DOPS web a 200 1", False),
        (b"<133>Jan  1 00:00:00 haproxy[42]: Server web/a is UP", False),
    ],
)
def test_receiver_counts_exactly_the_lines_the_parser_accepts(
    store: StateStore, clock: VirtualClock, tmp_path: Path, datagram: bytes, counted: bool
) -> None:
    c = _collector(store, clock, tmp_path)
    c.ingest(datagram)
    assert (parse_log_line(datagram) is not None) is counted
    assert (c.stats.requests, c.stats.ignored) == ((1, 0) if counted else (0, 1))
    line = parse_log_line(datagram)
    if line is not None:
        samples = c.flush()
        assert _by(samples, "web", MetricName.HTTP_5XX).value == (500 <= line.status <= 599)
        assert _by(samples, "web", MetricName.RESPONSE_TIME).count == (line.response_ms >= 0)


def _wait_accounted(c: MetricsCollector, sent: int, timeout_s: float = 60.0) -> None:
    """Until every sent datagram is either read or reported dropped by the kernel."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        st = c.stats
        if st.datagrams + st.dropped >= sent:
            return
        time.sleep(0.05)


def test_burst_of_request_lines_from_another_process_loses_none(
    store: StateStore, clock: VirtualClock, tmp_path: Path
) -> None:
    """HAProxy logs one UDP datagram per request: a 50,000-request burst must all count.

    What the collector guarantees: no line is lost while at most ``lossless_burst`` lines wait
    unread (its receive buffer; as root it is forced past ``net.core.rmem_max`` and holds
    50,000 even if the receiver is not scheduled at all), and any line the kernel drops is
    counted (``stats.dropped``) and logged, never silently missing."""
    c = _collector(store, clock, tmp_path)
    c.start()
    try:
        sender = (
            "import socket\n"
            "tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "lines = [b'<134>Jan  1 00:00:00 haproxy[1]: DOPS web-green t-%d %d %d 9'"
            " % (i % 3, 500 if i % 5 == 0 else 200, i % 50) for i in range(1000)]\n"
            "for _ in range(50):\n"
            "    for x in lines:\n"
            f"        tx.sendto(x, ('127.0.0.1', {c.syslog_port}))\n"
        )
        subprocess.run([sys.executable, "-c", sender], check=True, timeout=120)
        _wait_accounted(c, 50_000)
    finally:
        c.stop()
    st = c.stats
    assert st.requests + st.dropped == 50_000  # read or reported, never silently missing
    if os.geteuid() == 0:  # the forced buffer is the guarantee
        assert c.lossless_burst >= 50_000
    if c.lossless_burst >= 50_000:
        assert st.dropped == 0
        (rate,) = store.samples("web-green", "ErrorRate", 0, math.inf)
        assert (rate.value, rate.count) == (20.0, 50_000)


def test_lines_the_kernel_drops_are_counted_and_logged(
    store: StateStore, clock: VirtualClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A receive buffer too small for the burst: the drops are reported, not hidden."""
    c = _collector(store, clock, tmp_path, receive_buffer_bytes=64 * 1024)
    c.start()
    try:
        assert c.lossless_burst < 1000
        # Holding the lock stalls the receiver in its first ingest: nothing more is read.
        with c._lock, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for _ in range(3000):
                tx.sendto(_line("web-green", "task-1", 200, 5), ("127.0.0.1", c.syslog_port))
        _wait_accounted(c, 3000)
    finally:
        with caplog.at_level(logging.WARNING, logger="deployops.drivers.local.metrics"):
            c.stop()
    st = c.stats
    assert st.dropped > 0
    assert st.requests + st.dropped == 3000
    assert f"dropped {st.dropped} HAProxy request log lines" in caplog.text


def test_cpu_and_memory_per_replica_and_per_service(tmp_path: Path, store: StateStore) -> None:
    """CPU in percent of one core, memory in percent of the reservation.

    The replica burns a known 0.4 s of CPU between the two looks and the clock advances 1 s,
    so the value is about 40 % however loaded the machine is (it reads CPU time, not speed)."""
    burner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "print('ready', flush=True); sys.stdin.readline()\n"
            "t = time.process_time() + 0.4\n"
            "while time.process_time() < t: pass\n"
            "print('burnt', flush=True); sys.stdin.readline()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert burner.stdin is not None and burner.stdout is not None
    clock = VirtualClock()
    try:
        assert burner.stdout.readline() == "ready\n"
        c = _collector(
            store,
            clock,
            tmp_path,
            memory_reservation_mb=64.0,
            replicas=lambda: {"web-green": [("task-1", burner.pid), ("task-2", 2**22 + 7)]},
        )
        c.flush()  # first look: memory only, CPU needs two looks
        burner.stdin.write("go\n")
        burner.stdin.flush()
        assert burner.stdout.readline() == "burnt\n"
        clock.advance(1.0)
        samples = c.flush()
    finally:
        burner.kill()
        burner.wait(timeout=5)
    cpu = _by(samples, "web-green/task-1", MetricName.CPU)
    assert 38 <= cpu.value <= 50  # 0.4 s of CPU in 1 s (plus the reads and writes around it)
    mem = _by(samples, "web-green/task-1", MetricName.MEMORY)
    assert 1 <= mem.value <= 100  # a bare interpreter's RSS against 64 MiB
    service = _by(samples, "web-green", MetricName.CPU)
    assert (service.value, service.count) == (cpu.value, 1)  # the dead task-2 is left out
    assert not [s for s in samples if s.scope == "web-green/task-2"]


def test_per_replica_request_metrics_use_the_task_in_the_haproxy_slot(
    store: StateStore, clock: VirtualClock, tmp_path: Path
) -> None:
    """Request metrics of slot ``srv2`` land in ``web-green/task-7``, the scope of its CPU."""
    c = _collector(store, clock, tmp_path, server_tasks=lambda: {("web-green", "srv2"): "task-7"})
    c.ingest(_line("web-green", "srv2", 500, 3), _line("web-green", "srv2", 200, 3))
    samples = c.flush()
    rate = _by(samples, "web-green/task-7", MetricName.ERROR_RATE)
    assert (rate.value, rate.count) == (50.0, 2)
    assert not [s for s in samples if s.scope == "web-green/srv2"]


def test_replica_listing_failure_does_not_stop_sampling(
    store: StateStore, clock: VirtualClock, tmp_path: Path
) -> None:
    def broken() -> dict[str, list[tuple[str, int]]]:
        raise RuntimeError("supervisor restarting")

    c = _collector(store, clock, tmp_path, replicas=broken)
    c.ingest(_line("web", "a", 200, 1))
    samples = c.flush()
    assert _by(samples, "web", MetricName.REQUEST_COUNT).value == 1


# ---------------------------------------------------------------------- the Metrics port
def _q(
    clock: VirtualClock, metric: MetricName, stat: Statistic, minutes: int = 5, period: int = 60
) -> MetricQuery:
    start = clock.now()
    return MetricQuery(metric, "web-green", stat, start, start + timedelta(minutes=minutes), period)


def _requests(ts: float, errors: int, requests: int, latencies: list[float]) -> list[MetricSample]:
    sk = LatencySketch()
    for v in latencies:
        sk.add(v)
    mean = sum(latencies) / len(latencies) if latencies else 0.0
    return [
        MetricSample("web-green", "RequestCount", ts, float(requests), requests),
        MetricSample("web-green", "HTTPCode_5XX", ts, float(errors), requests),
        MetricSample(
            "web-green", "ErrorRate", ts, 100 * errors / requests if requests else 0, requests
        ),
        MetricSample(
            "web-green",
            "TargetResponseTime",
            ts,
            mean,
            len(latencies),
            sk.to_json() if latencies else None,
        ),
    ]


def test_local_metrics_implements_the_port(store: StateStore, clock: VirtualClock) -> None:
    m = LocalMetrics(store=store, clock=clock)
    assert isinstance(m, Metrics)
    assert m.name == "local"


def test_error_rate_average_is_weighted_by_requests_per_period(
    store: StateStore, clock: VirtualClock
) -> None:
    t0 = clock.now().timestamp()
    store.add_samples(_requests(t0 + 0, 50, 100, [1.0]))  # 50 %, few requests
    store.add_samples(_requests(t0 + 10, 0, 900, [1.0]))  # 0 %, many requests
    store.add_samples(_requests(t0 + 125, 3, 10, [1.0]))  # third period; the second is empty
    m = LocalMetrics(store=store, clock=clock)
    got = m.query(_q(clock, MetricName.ERROR_RATE, Statistic.AVERAGE))
    assert got.ok
    assert [(p.timestamp.timestamp() - t0, p.value, p.samples) for p in got.datapoints] == [
        (0.0, 5.0, 1000),  # 100 * 50 / 1000, not the mean of 50 % and 0 %
        (120.0, 30.0, 10),
    ]
    total = m.query(_q(clock, MetricName.REQUEST_COUNT, Statistic.SUM))
    assert [p.value for p in total.datapoints] == [1000.0, 10.0]
    peak = m.query(_q(clock, MetricName.ERROR_RATE, Statistic.MAXIMUM))
    assert [p.value for p in peak.datapoints] == [50.0, 30.0]


def test_p99_over_a_period_merges_the_interval_sketches(
    store: StateStore, clock: VirtualClock
) -> None:
    """RB-1's "P99 > 1000 ms": the percentile of every request, not an average of p99s."""
    t0 = clock.now().timestamp()
    rng = random.Random(3)
    everything: list[float] = []
    for k in range(6):  # six 10 s intervals in one 60 s period
        lat = [rng.lognormvariate(3.0, 1.0) for _ in range(400)]
        if k == 5:
            lat += [2000.0] * 30  # a slow burst in one interval
        everything += lat
        store.add_samples(_requests(t0 + 10 * k, 0, len(lat), lat))
    m = LocalMetrics(store=store, clock=clock)
    exact = sorted(everything)
    for stat, q in ((Statistic.P50, 0.5), (Statistic.P90, 0.9), (Statistic.P99, 0.99)):
        (point,) = m.query(_q(clock, MetricName.RESPONSE_TIME, stat, minutes=1)).datapoints
        truth = exact[math.floor(q * (len(exact) - 1))]
        assert point.value == pytest.approx(truth, rel=0.01)
        assert point.samples == len(everything)
    (avg,) = m.query(_q(clock, MetricName.RESPONSE_TIME, Statistic.AVERAGE, minutes=1)).datapoints
    assert avg.value == pytest.approx(sum(everything) / len(everything))
    (top,) = m.query(_q(clock, MetricName.RESPONSE_TIME, Statistic.MAXIMUM, minutes=1)).datapoints
    assert top.value == 2000.0


def test_silence_reads_zero_error_rate_and_no_latency(
    store: StateStore, clock: VirtualClock
) -> None:
    t0 = clock.now().timestamp()
    store.add_samples(_requests(t0, 0, 0, []))
    m = LocalMetrics(store=store, clock=clock)
    (rate,) = m.query(_q(clock, MetricName.ERROR_RATE, Statistic.AVERAGE)).datapoints
    assert (rate.value, rate.samples) == (0.0, 0)
    assert m.query(_q(clock, MetricName.RESPONSE_TIME, Statistic.P99)).datapoints == ()
    (n,) = m.query(_q(clock, MetricName.REQUEST_COUNT, Statistic.SAMPLE_COUNT)).datapoints
    assert n.value == 0


def test_gauge_statistics_count_scrapes(store: StateStore, clock: VirtualClock) -> None:
    t0 = clock.now().timestamp()
    store.add_samples(
        MetricSample("web-green", "CPUUtilization", t0 + 10 * i, v, 2)
        for i, v in enumerate([10.0, 30.0, 80.0])
    )
    m = LocalMetrics(store=store, clock=clock)

    def one(stat: Statistic) -> tuple[float, int]:
        (p,) = m.query(_q(clock, MetricName.CPU, stat)).datapoints
        return p.value, p.samples

    assert one(Statistic.AVERAGE) == (40.0, 3)
    assert one(Statistic.MINIMUM) == (10.0, 3)
    assert one(Statistic.MAXIMUM) == (80.0, 3)
    assert one(Statistic.SAMPLE_COUNT) == (3.0, 3)
    assert one(Statistic.P50) == (30.0, 3)


def test_window_end_is_exclusive(store: StateStore, clock: VirtualClock) -> None:
    t0 = clock.now().timestamp()
    store.add_samples([MetricSample("web-green", "RequestCount", t0 + 300, 5.0, 5)])
    m = LocalMetrics(store=store, clock=clock)
    assert m.query(_q(clock, MetricName.REQUEST_COUNT, Statistic.SUM)).datapoints == ()


@pytest.mark.parametrize(
    ("stat", "period", "minutes", "message"),
    [
        (Statistic.AVERAGE, 0, 5, "period must be > 0"),
        (Statistic.AVERAGE, 60, 0, "empty window"),
        (Statistic.SUM, 60, 5, "ask ErrorRate's Average"),
    ],
)
def test_bad_query_is_an_error_value_not_an_exception(
    store: StateStore, clock: VirtualClock, stat: Statistic, period: int, minutes: int, message: str
) -> None:
    m = LocalMetrics(store=store, clock=clock)
    got = m.query(_q(clock, MetricName.ERROR_RATE, stat, minutes=minutes, period=period))
    assert not got.ok
    assert message in got.error


def test_unreadable_store_is_an_error_value(tmp_path: Path, clock: VirtualClock) -> None:
    path = tmp_path / "gone.db"
    s = StateStore.open("sqlite:///" + str(path))
    s.close()
    path.unlink()  # the next connection finds a database without tables
    got = LocalMetrics(store=s, clock=clock).query(
        _q(clock, MetricName.ERROR_RATE, Statistic.AVERAGE)
    )
    assert not got.ok
    assert "cannot read metric samples" in got.error


def test_corrupt_sketch_is_an_error_value(store: StateStore, clock: VirtualClock) -> None:
    t0 = clock.now().timestamp()
    store.add_samples([MetricSample("web-green", "TargetResponseTime", t0, 5.0, 3, "{oops")])
    got = LocalMetrics(store=store, clock=clock).query(
        _q(clock, MetricName.RESPONSE_TIME, Statistic.P99)
    )
    assert "bad metric sample" in got.error
