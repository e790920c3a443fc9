"""Metrics of the local platform: a collector that writes samples to the state store, and
:class:`LocalMetrics`, the ``Metrics`` port answering GetMetricData-like queries from them.

Sources, per sample interval (``metrics_interval``, default 10 s):

* HAProxy's per-request log lines, received over UDP syslog. Frontends log with
  ``log-format "DOPS %b %s %ST %Tr %Ta"`` (backend, server, HTTP status, server response time
  in ms, total active time in ms; ``-1`` when aborted). Per backend (= target group, e.g.
  ``web-green``) and per replica, ``backend/<task_id>`` (the ``server_tasks`` callback maps
  HAProxy server slots to tasks; without it, ``backend/<server name>``): ``RequestCount``,
  ``HTTPCode_5XX``, ``ErrorRate`` (percent, ``count`` = requests) and ``TargetResponseTime``
  (``%Tr``, like ALB's "time until the target starts answering": ``value`` = mean ms,
  ``count`` = requests, ``sketch`` = a mergeable
  :class:`~deployops.domain.sketch.LatencySketch` so any percentile over any period can be
  answered by merging).
* HAProxy's ``show stat`` over the admin socket, per backend: ``HealthyHostCount`` (servers UP
  among those not in maintenance) and ``HealthCheckFailureRatio`` (percent of checked servers
  not in maintenance that are DOWN).
* psutil, per compute service (scope ``web-green``) and per replica (``web-green/<task_id>``):
  ``CPUUtilization`` in **percent of one core** (a replica using two full cores reads 200; ECS
  reads percent of the task's reserved CPU instead; the local platform reserves no CPU, so one
  core is the unit) and ``MemoryUtilization`` in percent of a memory reservation (default
  512 MiB, like an ECS task's ``memory``). A replica counts its process and its children. A
  service's value is the mean of its replicas' values.

A backend that served nothing in an interval still gets samples (value 0, count 0), so silence
is distinguishable from missing data. Samples older than the retention are pruned.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar

import psutil
from sqlalchemy.exc import SQLAlchemyError

from deployops.clock import Clock, utc
from deployops.domain.model import Datapoint, Measurement, MetricName, MetricQuery, Statistic
from deployops.domain.sketch import LatencySketch
from deployops.drivers.local.haproxy import ServerStat, runtime_exchange
from deployops.errors import DeployopsError, DriverError
from deployops.store import StateStore
from deployops.store.records import MetricSample

__all__ = [
    "LOG_FORMAT",
    "LocalMetrics",
    "MetricsCollector",
    "RequestLine",
    "ServerStat",
    "next_boundary",
    "parse_log_line",
    "parse_show_stat",
]

log = logging.getLogger(__name__)

#: The HAProxy ``log-format`` every frontend of the local platform uses.
LOG_FORMAT = '"DOPS %b %s %ST %Tr %Ta"'
_MARKER = b"DOPS "
_MIB = 1024 * 1024
#: The receive buffer the collector asks for. Linux doubles it for its bookkeeping; each small
#: datagram costs about 832 bytes of it on loopback (its ``truesize``), so 32 MiB holds about
#: 80,000 request lines nobody has read yet (a 2-core machine under load may not schedule the
#: receiver for seconds).
RECEIVE_BUFFER_BYTES = 32 * _MIB
#: What one queued request line is taken to cost in the receive buffer when stating how large
#: a burst is held without loss (above the measured 832 bytes, for longer names).
_DATAGRAM_COST = 1024
_SO_RCVBUFFORCE = 33  # Linux, <asm-generic/socket.h>; not exported by Python's socket module


# ---------------------------------------------------------------------- parsing
@dataclass(frozen=True, slots=True)
class RequestLine:
    """One request as HAProxy logged it."""

    backend: str
    server: str
    status: int
    response_ms: int  # %Tr: -1 when no server answered (aborted, no server, timeout)
    total_ms: int  # %Ta


def parse_log_line(datagram: bytes) -> RequestLine | None:
    """The request in an RFC3164-ish syslog datagram, or ``None`` if it holds no ``DOPS``
    line (HAProxy also logs start-up and server state changes) or a malformed one.

    >>> parse_log_line(b"<134>Jan  1 00:00:00 haproxy[7]: DOPS web-green t-1 500 12 13")
    RequestLine(backend='web-green', server='t-1', status=500, response_ms=12, total_ms=13)
    """
    at = datagram.find(_MARKER)
    if at < 0:
        return None
    parts = datagram[at + len(_MARKER) :].split()
    if len(parts) < 5:
        return None
    try:
        return RequestLine(
            backend=parts[0].decode("utf-8", "replace"),
            server=parts[1].decode("utf-8", "replace"),
            status=int(parts[2]),
            response_ms=int(parts[3]),
            total_ms=int(parts[4]),
        )
    except ValueError:
        return None


def parse_show_stat(text: str) -> tuple[list[str], list[ServerStat]]:
    """Backend names and server rows of HAProxy's ``show stat`` CSV (HAProxy management
    guide, section 9.1: ``type`` 1 is a backend, 2 a server)."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        raise ValueError("show stat did not answer with its CSV header")
    reader = csv.DictReader(io.StringIO("\n".join([lines[0][2:], *lines[1:]])))
    backends: list[str] = []
    servers: list[ServerStat] = []
    for row in reader:
        kind = (row.get("type") or "").strip()
        px, sv = row.get("pxname") or "", row.get("svname") or ""
        if kind == "1" or (not kind and sv == "BACKEND"):
            backends.append(px)
        elif kind == "2" or (not kind and sv not in ("FRONTEND", "BACKEND")):
            status = (row.get("status") or "").strip()
            servers.append(
                ServerStat(
                    backend=px,
                    server=sv,
                    status=status,
                    check_status=(row.get("check_status") or "").strip(),
                )
            )
    return backends, servers


def read_show_stat(admin_socket: Path, *, timeout_s: float = 2.0) -> str:
    """Ask HAProxy's runtime API for ``show stat`` over its UNIX socket."""
    try:
        return runtime_exchange(admin_socket, "show stat", timeout_s=timeout_s)
    except OSError as exc:
        raise DriverError(
            "local-metrics",
            "show stat",
            f"cannot read HAProxy stats from {admin_socket}: {exc}",
            retryable=True,
            hint="start the local platform (deployops local up) so HAProxy is running",
        ) from exc


# ---------------------------------------------------------------------- collector
@dataclass
class _Requests:
    requests: int = 0
    errors: int = 0
    # %Tr is whole milliseconds: counting each value is cheaper per request than a sketch
    # insert; the sketch is built once per interval from these counts.
    latencies: dict[int, int] = field(default_factory=dict)

    def add(self, *, is_5xx: bool, response_ms: int, count: int = 1) -> None:
        self.requests += count
        if is_5xx:
            self.errors += count
        if response_ms >= 0:
            self.latencies[response_ms] = self.latencies.get(response_ms, 0) + count

    def samples(self, scope: str, ts: float) -> list[MetricSample]:
        n = self.requests
        rate = 100.0 * self.errors / n if n else 0.0
        sketch = LatencySketch()
        total = 0
        for ms, c in self.latencies.items():
            sketch.add(float(ms), c)
            total += ms * c
        timed = sketch.count
        mean = total / timed if timed else 0.0
        return [
            MetricSample(scope, MetricName.REQUEST_COUNT.value, ts, float(n), n),
            MetricSample(scope, MetricName.HTTP_5XX.value, ts, float(self.errors), n),
            MetricSample(scope, MetricName.ERROR_RATE.value, ts, rate, n),
            MetricSample(
                scope,
                MetricName.RESPONSE_TIME.value,
                ts,
                mean,
                timed,
                sketch.to_json() if timed else None,
            ),
        ]


@dataclass(frozen=True, slots=True)
class CollectorStats:
    datagrams: int
    requests: int
    ignored: int  # datagrams without a (well-formed) DOPS line
    #: datagrams the kernel dropped because the receive buffer was full (Linux: the ``drops``
    #: column of ``/proc/net/udp`` for the collector's socket); request counts are low by this
    dropped: int = 0


class MetricsCollector:
    """Samples HAProxy and the replicas' processes every ``interval_s`` into the store.

    >>> c = MetricsCollector(store=store, clock=SystemClock(), interval_s=10,  # doctest: +SKIP
    ...     retention_s=7 * 86400, syslog_port=0, admin_socket=run / "haproxy.sock",
    ...     replicas=supervisor.replica_pids)
    >>> c.start(); ...; c.stop()  # doctest: +SKIP

    ``server_tasks`` maps (backend, HAProxy server name) to the task serving in that slot, so
    per-replica request metrics land in the same scope (``service/task_id``) as CPU and memory;
    without it the server name is used. ``syslog_port=0`` binds a free port; read it back from
    :attr:`syslog_port` after :meth:`start`. :meth:`flush` closes the current interval at once
    (tests, shutdown).
    """

    def __init__(
        self,
        *,
        store: StateStore,
        clock: Clock,
        interval_s: float,
        retention_s: float,
        syslog_port: int,
        admin_socket: Path,
        replicas: Callable[[], Mapping[str, Sequence[tuple[str, int]]]],
        memory_reservation_mb: float = 512.0,
        syslog_host: str = "127.0.0.1",
        server_tasks: Callable[[], Mapping[tuple[str, str], str]] | None = None,
        receive_buffer_bytes: int = RECEIVE_BUFFER_BYTES,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self._store = store
        self._clock = clock
        self._interval_s = interval_s
        self._retention_s = retention_s
        self._port = syslog_port
        self._host = syslog_host
        self._admin_socket = admin_socket
        self._replicas = replicas
        self._server_tasks = server_tasks
        self._memory_reservation = memory_reservation_mb * _MIB
        self._receive_buffer_wanted = receive_buffer_bytes
        self._receive_buffer = 0  # what the kernel granted, once started
        self._dropped_reported = 0
        self._dropped_final = 0
        self._lock = threading.Lock()  # guards the request aggregates and counters
        self._flush_lock = threading.Lock()
        # (backend, server, is 5xx, %Tr ms) -> requests: one dict update per request.
        self._counts: dict[tuple[bytes, bytes, bool, int], int] = {}
        self._seen_backends: set[str] = set()
        self._datagrams = 0
        self._requests = 0
        self._ignored = 0
        self._cpu_prev: dict[tuple[int, float], tuple[float, float]] = {}
        # Reset by start(); set here so flush() works on a collector that was never started.
        self._interval_start = clock.now().timestamp()
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_warning = ""

    # ------------------------------------------------------------------ lifecycle
    @property
    def syslog_port(self) -> int:
        """The UDP port HAProxy must log to (the bound one once started)."""
        return self._sock.getsockname()[1] if self._sock is not None else self._port

    @property
    def stats(self) -> CollectorStats:
        dropped = self._kernel_drops()
        with self._lock:
            return CollectorStats(self._datagrams, self._requests, self._ignored, dropped)

    @property
    def receive_buffer_bytes(self) -> int:
        """The receive buffer the kernel granted the syslog socket (0 before start)."""
        return self._receive_buffer

    @property
    def lossless_burst(self) -> int:
        """How many request lines may queue unread without one being dropped: the product's
        guarantee, from the granted receive buffer (0 before start)."""
        return self._receive_buffer // _DATAGRAM_COST

    def _kernel_drops(self) -> int:
        """Datagrams the kernel dropped on our socket since it was bound; 0 where unknown
        (not Linux). After stop, the count read just before the socket closed."""
        sock = self._sock
        if sock is None:
            return self._dropped_final
        try:
            inode = str(os.fstat(sock.fileno()).st_ino)
        except OSError:
            return self._dropped_final
        for table in ("/proc/net/udp", "/proc/net/udp6"):
            try:
                with open(table, encoding="ascii") as f:
                    next(f, None)
                    for row in f:
                        cols = row.split()
                        if len(cols) > 12 and cols[9] == inode:
                            return int(cols[12])
            except (OSError, ValueError):
                continue
        return 0

    def _open_socket(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        wanted = self._receive_buffer_wanted
        # A deep receive buffer absorbs bursts while the receiver is not scheduled. The plain
        # option is capped by net.core.rmem_max (often 208 KiB); as root, force it past that.
        forced = False
        if sys.platform.startswith("linux") and os.geteuid() == 0:
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, wanted)
                forced = True
            except OSError:
                forced = False
        if not forced:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, wanted)
        self._receive_buffer = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        if self._receive_buffer < wanted:  # Linux grants twice what is asked when it can
            log.warning(
                "metrics: the HAProxy log socket got a %d KiB receive buffer, not the %d KiB "
                "asked (net.core.rmem_max); a burst of more than %d requests the collector has "
                "not read yet may be dropped (drops are counted and logged). Raise "
                "net.core.rmem_max or run the local platform as root.",
                self._receive_buffer // 1024,
                wanted // 1024,
                self.lossless_burst,
            )
        return sock

    def start(self) -> None:
        """Bind the syslog port and start the receiver and sampler threads."""
        if self._threads:
            return
        sock = self._open_socket()
        try:
            sock.bind((self._host, self._port))
        except OSError as exc:
            sock.close()
            raise DriverError(
                "local-metrics",
                "start",
                f"cannot listen for HAProxy logs on udp://{self._host}:{self._port}: {exc}",
                hint="free that port or set another metrics syslog port",
            ) from exc
        self._sock = sock
        self._stop.clear()
        self._interval_start = self._clock.now().timestamp()
        self._prime_cpu()
        self._threads = [
            threading.Thread(target=self._receive, name="metrics-syslog", daemon=True),
            threading.Thread(target=self._sample, name="metrics-sampler", daemon=True),
        ]
        for th in self._threads:
            th.start()

    def stop(self) -> None:
        """Stop both threads, write the last partial interval and close the port."""
        self._stop.set()
        if self._sock is not None and self._threads:
            self._wake_receiver()
        for th in self._threads:
            th.join(timeout=5.0)
        self._threads = []
        if self._sock is not None:
            self._drain()
            self._dropped_final = self._kernel_drops()
            self._sock.close()
            self._sock = None
            self.flush()

    # ------------------------------------------------------------------ receiving
    def _receive(self) -> None:
        assert self._sock is not None
        sock = self._sock
        while not self._stop.is_set():
            try:
                # Block for one datagram, then take what else is queued without waiting, so
                # a burst costs one lock round per batch, not per request.
                batch = [sock.recv(65535)]
                while len(batch) < 512:
                    batch.append(sock.recv(65535, socket.MSG_DONTWAIT))
            except BlockingIOError:
                pass
            except OSError:
                return  # closed under us
            self.ingest(*batch)

    def _wake_receiver(self) -> None:
        """An empty datagram to our own port unblocks ``recv`` so the thread sees stop."""
        assert self._sock is not None
        host, port = self._sock.getsockname()[:2]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.sendto(b"", ("127.0.0.1" if host == "0.0.0.0" else host, port))

    def _drain(self) -> None:
        """Read what is already queued on the socket (stop must not lose the tail)."""
        assert self._sock is not None
        self._sock.setblocking(False)
        batch: list[bytes] = []
        while True:
            try:
                batch.append(self._sock.recv(65535))
            except OSError:
                break
        self.ingest(*batch)

    def ingest(self, *datagrams: bytes) -> None:
        """Count syslog datagrams (the receiver calls this; tests may too). Empty ones (the
        receiver's wake-up) are not counted.

        The hot path: HAProxy sends one datagram per request, so this does what
        :func:`parse_log_line` does without building objects, and takes the lock once per batch.
        """
        counts: dict[tuple[bytes, bytes, bool, int], int] = {}
        seen = ignored = 0
        for d in datagrams:
            if not d:
                continue
            seen += 1
            at = d.find(_MARKER)
            parts = d[at + len(_MARKER) :].split() if at >= 0 else []
            if len(parts) < 5 or not parts[2].lstrip(b"-").isdigit():  # -1: no response
                ignored += 1
                continue
            try:
                ms = int(parts[3])
                int(parts[4])
            except ValueError:
                ignored += 1
                continue
            status = parts[2]
            key = (parts[0], parts[1], len(status) == 3 and status[0] == 0x35, max(ms, -1))
            counts[key] = counts.get(key, 0) + 1
        with self._lock:
            self._datagrams += seen
            self._ignored += ignored
            self._requests += seen - ignored
            mine = self._counts
            for key, c in counts.items():
                mine[key] = mine.get(key, 0) + c

    # ------------------------------------------------------------------ sampling
    def _sample(self) -> None:
        """Close an interval at every multiple of ``interval_s`` on the wall clock."""
        boundary = next_boundary(self._clock.now().timestamp(), self._interval_s)
        while not self._stop.is_set():
            remaining = boundary - self._clock.now().timestamp()
            if remaining > 0:
                # Event.wait, not sleep: stop() must not wait a whole interval.
                self._stop.wait(min(remaining, 0.25))
                continue
            self.flush(at=boundary)
            # Fell behind (a slow store): skip to the next boundary, do not burst.
            now = self._clock.now().timestamp()
            boundary = next_boundary(max(boundary + self._interval_s / 2, now), self._interval_s)

    def flush(self, *, at: float | None = None) -> list[MetricSample]:
        """Close the current interval: write and return its samples, prune old ones.

        ``at`` is the boundary the interval ends at (the sampler passes it, so the next
        interval starts exactly on it); by default, now."""
        with self._flush_lock:
            now = self._clock.now().timestamp()
            ts = self._interval_start
            self._interval_start = now if at is None else at
            with self._lock:
                counts, self._counts = self._counts, {}
            backends: dict[str, _Requests] = {}
            servers: dict[tuple[str, str], _Requests] = {}
            for (b_raw, s_raw, is_5xx, ms), c in counts.items():
                b, sv = b_raw.decode("utf-8", "replace"), s_raw.decode("utf-8", "replace")
                backends.setdefault(b, _Requests()).add(is_5xx=is_5xx, response_ms=ms, count=c)
                if not sv.startswith("<"):  # <NOSRV>: HAProxy answered itself
                    per = servers.setdefault((b, sv), _Requests())
                    per.add(is_5xx=is_5xx, response_ms=ms, count=c)
            self._seen_backends.update(backends)
            seen = set(self._seen_backends)
            samples: list[MetricSample] = []
            stat_backends, stat_servers = self._show_stat()
            known = set(stat_backends) if stat_backends is not None else seen
            for name in sorted(known | set(backends)):
                samples += backends.get(name, _Requests()).samples(name, ts)
            # Empty slots (MAINT) get no samples: they are not replicas.
            known_servers = {(s.backend, s.server) for s in stat_servers if not s.maint}
            tasks = self._task_names()
            for b, s in sorted(known_servers | set(servers)):
                scope = f"{b}/{tasks.get((b, s), s)}"
                samples += servers.get((b, s), _Requests()).samples(scope, ts)
            if stat_backends is not None:
                samples += _health_samples(stat_backends, stat_servers, ts)
            samples += self._process_samples(ts)
            self._report_drops()
            try:
                self._store.add_samples(samples)
                self._store.prune_samples(now - self._retention_s)
            except (DeployopsError, SQLAlchemyError) as exc:
                self._warn(f"metrics: cannot write samples to the state store: {exc}")
            return samples

    def _report_drops(self) -> None:
        """Log the request lines the kernel dropped since the last interval: the request
        counts (and so error rates and incident impact) are low by that many, and saying so
        beats undercounting in silence."""
        dropped = self._kernel_drops()
        if dropped > self._dropped_reported:
            log.warning(
                "metrics: the kernel dropped %d HAProxy request log lines (%d in all) because "
                "the collector's receive buffer (%d KiB) was full; request counts are low by "
                "that many. Give the machine more CPU or raise net.core.rmem_max.",
                dropped - self._dropped_reported,
                dropped,
                self._receive_buffer // 1024,
            )
            self._dropped_reported = dropped

    def _task_names(self) -> Mapping[tuple[str, str], str]:
        if self._server_tasks is None:
            return {}
        try:
            return self._server_tasks()
        except Exception as exc:  # noqa: BLE001 - a callback failure must not stop sampling
            self._warn(f"metrics: cannot map HAProxy servers to tasks: {exc}")
            return {}

    def _show_stat(self) -> tuple[list[str] | None, list[ServerStat]]:
        try:
            return parse_show_stat(read_show_stat(self._admin_socket))
        except (DriverError, ValueError) as exc:
            self._warn(f"metrics: no HAProxy stats this interval: {exc}")
            return None, []

    def _warn(self, message: str) -> None:
        # Once per distinct problem, so a stopped HAProxy does not flood the log.
        if message != self._last_warning:
            log.warning("%s", message)
            self._last_warning = message

    # ------------------------------------------------------------------ processes
    def _list_replicas(self) -> Mapping[str, Sequence[tuple[str, int]]]:
        try:
            return self._replicas()
        except Exception as exc:  # noqa: BLE001 - a callback failure must not stop sampling
            self._warn(f"metrics: cannot list replicas: {exc}")
            return {}

    def _prime_cpu(self) -> None:
        for tasks in self._list_replicas().values():
            for _task, pid in tasks:
                self._replica_usage(pid)

    def _replica_usage(self, pid: int) -> tuple[float | None, float] | None:
        """(CPU % of one core since the last look or ``None`` on the first, RSS bytes) of a
        process and its children, or ``None`` if it is gone."""
        try:
            proc = psutil.Process(pid)
            key = (pid, proc.create_time())
            family = [proc, *proc.children(recursive=True)]
            cpu = 0.0
            rss = 0.0
            for p in family:
                try:
                    t = p.cpu_times()
                    cpu += t.user + t.system
                    rss += p.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue  # a child that just exited
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return None
        mono = self._clock.monotonic()
        prev = self._cpu_prev.get(key)
        self._cpu_prev[key] = (cpu, mono)
        if prev is None or mono <= prev[1]:
            return None, rss
        # Children that exited take their CPU time with them: never report below zero.
        return max(0.0, 100.0 * (cpu - prev[0]) / (mono - prev[1])), rss

    def _process_samples(self, ts: float) -> list[MetricSample]:
        out: list[MetricSample] = []
        alive: set[int] = set()
        for service, tasks in sorted(self._list_replicas().items()):
            cpus: list[float] = []
            mems: list[float] = []
            for task_id, pid in tasks:
                alive.add(pid)
                usage = self._replica_usage(pid)
                if usage is None:
                    continue
                cpu, rss = usage
                scope = f"{service}/{task_id}"
                mem = 100.0 * rss / self._memory_reservation
                mems.append(mem)
                out.append(MetricSample(scope, MetricName.MEMORY.value, ts, mem, 1))
                if cpu is not None:
                    cpus.append(cpu)
                    out.append(MetricSample(scope, MetricName.CPU.value, ts, cpu, 1))
            if mems:
                m = sum(mems) / len(mems)
                out.append(MetricSample(service, MetricName.MEMORY.value, ts, m, len(mems)))
            if cpus:
                c = sum(cpus) / len(cpus)
                out.append(MetricSample(service, MetricName.CPU.value, ts, c, len(cpus)))
        self._cpu_prev = {k: v for k, v in self._cpu_prev.items() if k[0] in alive}
        return out


def _health_samples(
    backends: Iterable[str], servers: Sequence[ServerStat], ts: float
) -> list[MetricSample]:
    out: list[MetricSample] = []
    for backend in sorted(set(backends)):
        active = [s for s in servers if s.backend == backend and not s.maint]
        healthy = sum(1 for s in active if s.up)
        checked = [s for s in active if s.checked]
        failing = sum(1 for s in checked if s.down)
        ratio = 100.0 * failing / len(checked) if checked else 0.0
        out.append(
            MetricSample(backend, MetricName.HEALTHY_HOSTS.value, ts, float(healthy), len(active))
        )
        out.append(
            MetricSample(backend, MetricName.HEALTH_CHECK_FAILURES.value, ts, ratio, len(checked))
        )
    return out


# ---------------------------------------------------------------------- the Metrics port
# Metrics measured per request: a sample's ``count`` is its number of requests.
_PER_REQUEST = frozenset(
    {
        MetricName.REQUEST_COUNT.value,
        MetricName.HTTP_5XX.value,
        MetricName.ERROR_RATE.value,
        MetricName.RESPONSE_TIME.value,
    }
)
_QUANTILES = {Statistic.P50: 0.50, Statistic.P90: 0.90, Statistic.P99: 0.99}


def next_boundary(now: float, interval_s: float) -> float:
    """The first multiple of ``interval_s`` (seconds since the epoch) after ``now``.

    The collector closes its intervals on these boundaries, so a rule whose period is a
    multiple of the interval can judge a period as soon as it ends: its last sample is
    written at that moment, whatever the phase the daemon started at."""
    return (math.floor(now / interval_s) + 1) * interval_s


class LocalMetrics:
    """The ``Metrics`` port over the collector's samples, like CloudWatch GetMetricData.

    >>> m = LocalMetrics(store=store, clock=clock)  # doctest: +SKIP
    >>> m.query(MetricQuery(MetricName.ERROR_RATE, "web-green", Statistic.AVERAGE,
    ...                     start, end, period_s=60)).datapoints  # doctest: +SKIP

    Per period of ``period_s`` seconds from ``start``:

    * ``Average``: for ``ErrorRate`` and ``TargetResponseTime`` weighted by requests
      (``100 * sum(5xx) / sum(requests)``; mean latency of every request), else the mean of the
      samples.
    * ``Sum``, ``Minimum``, ``Maximum`` of the samples (``TargetResponseTime``: total, fastest
      and slowest request in ms).
    * ``SampleCount``: requests for per-request metrics, scrapes for the others.
    * ``p50``/``p90``/``p99``: merged latency sketches for ``TargetResponseTime`` (within 1 %
      of the exact percentile), the samples' percentile for the others.

    A period without samples has no datapoint (missing data). A period with samples but no
    request has ``ErrorRate`` 0 with ``samples=0`` and no latency datapoint.
    """

    name: ClassVar[str] = "local"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"percentiles", "per-replica", "zero-traffic-samples", "latency-sketch"}
    )

    def __init__(self, *, store: StateStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def latency_sketch(self, scope: str, start: datetime, end: datetime) -> LatencySketch | None:
        """The merged latency sketch (ms) of ``scope``'s requests in ``[start, end)``."""
        merged = LatencySketch()
        samples = self._store.samples(
            scope, MetricName.RESPONSE_TIME.value, start.timestamp(), end.timestamp()
        )
        for s in samples:
            if s.sketch:
                merged.merge(LatencySketch.from_json(s.sketch))
        return merged if samples else None

    def query(self, query: MetricQuery) -> Measurement:
        try:
            return Measurement(query=query, datapoints=self._datapoints(query))
        except _QueryError as exc:
            return Measurement(query=query, error=str(exc))
        except (DeployopsError, SQLAlchemyError) as exc:
            return Measurement(query=query, error=f"cannot read metric samples: {exc}")
        except ValueError as exc:  # a stored sketch that does not parse
            return Measurement(query=query, error=f"bad metric sample: {exc}")

    def _datapoints(self, q: MetricQuery) -> tuple[Datapoint, ...]:
        metric = MetricName(q.metric).value
        statistic = Statistic(q.statistic)
        t0, t1 = q.start.timestamp(), q.end.timestamp()
        if q.period_s <= 0:
            raise _QueryError(f"period must be > 0 s, not {q.period_s}")
        if t1 <= t0:
            raise _QueryError(f"empty window: end {q.end.isoformat()} is not after start")
        if statistic is Statistic.SUM and metric == MetricName.ERROR_RATE.value:
            raise _QueryError("Sum of a percentage means nothing; ask ErrorRate's Average")
        buckets: dict[int, list[MetricSample]] = {}
        for s in self._store.samples(q.scope, metric, t0, t1):
            buckets.setdefault(int((s.ts - t0) // q.period_s), []).append(s)
        out: list[Datapoint] = []
        for i in sorted(buckets):
            point = _statistic(metric, statistic, buckets[i])
            if point is not None:
                value, n = point
                out.append(Datapoint(timestamp=utc(t0 + i * q.period_s), value=value, samples=n))
        return tuple(out)


class _QueryError(Exception):
    pass


def _statistic(
    metric: str, statistic: Statistic, samples: Sequence[MetricSample]
) -> tuple[float, int] | None:
    """(value, observations) of one period, or ``None`` when the period has no value."""
    per_request = metric in _PER_REQUEST
    n = sum(s.count for s in samples) if per_request else len(samples)
    values = [s.value for s in samples]
    if metric == MetricName.RESPONSE_TIME.value:
        return _latency(statistic, samples, n)
    if metric == MetricName.ERROR_RATE.value:
        if statistic is Statistic.AVERAGE:
            weighted = sum(s.value * s.count for s in samples)
            return (weighted / n if n else 0.0), n
        # Minimum/Maximum/percentiles over intervals that saw requests; idle ones read 0.
        values = [s.value for s in samples if s.count] or [0.0]
    if statistic is Statistic.SAMPLE_COUNT:
        return float(n), n
    if statistic is Statistic.SUM:
        return math.fsum(values), n
    if statistic is Statistic.AVERAGE:
        return math.fsum(values) / len(values), n
    if statistic is Statistic.MINIMUM:
        return min(values), n
    if statistic is Statistic.MAXIMUM:
        return max(values), n
    ordered = sorted(values)
    return ordered[math.floor(_QUANTILES[statistic] * (len(ordered) - 1))], n


def _latency(
    statistic: Statistic, samples: Sequence[MetricSample], n: int
) -> tuple[float, int] | None:
    if statistic is Statistic.SAMPLE_COUNT:
        return float(n), n
    if not n:
        return None  # no request, no latency (like CloudWatch)
    if statistic is Statistic.SUM:
        return math.fsum(s.value * s.count for s in samples), n
    if statistic is Statistic.AVERAGE:
        return math.fsum(s.value * s.count for s in samples) / n, n
    merged = LatencySketch()
    for s in samples:
        if s.sketch:
            merged.merge(LatencySketch.from_json(s.sketch))
    if not merged.count:
        return None
    if statistic is Statistic.MINIMUM:
        return merged.min, n
    if statistic is Statistic.MAXIMUM:
        return merged.max, n
    return merged.quantile(_QUANTILES[statistic]), n
