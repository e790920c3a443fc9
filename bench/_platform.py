"""Shared by the local-platform benchmarks: a throwaway project with the sample service, the
platform started and stopped around a benchmark, ``wrk`` runs with a JSON summary, and a
per-response probe that records when each answer came and from which version.

All traffic goes to 127.0.0.1; every loop has a deadline or a request limit.
"""

from __future__ import annotations

import http.client
import json
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from _common import REPO, VENV_BIN

from deployops.clock import SystemClock
from deployops.config.project import ProjectConfig, load_project
from deployops.domain.model import HealthCheck, TaskDefinitionSpec
from deployops.drivers.local import control
from deployops.drivers.local.client import DaemonClient
from deployops.drivers.local.compute import LocalCompute
from deployops.drivers.local.haproxy import HaproxyRuntime
from deployops.drivers.local.paths import LocalPaths
from deployops.drivers.local.traffic import HaproxyTraffic

__all__ = [
    "ENV",
    "Bench",
    "Probe",
    "Sample",
    "WrkResult",
    "free_port",
    "listen_overflows",
    "platform",
    "require_wrk",
    "run_wrk",
    "start_wrk",
    "wait_until",
]

ENV = "development"
SAMPLE_SERVICE = REPO / "examples" / "sample-service"
DEPLOYOPS = str(VENV_BIN / "deployops")
FAST_HEALTH = HealthCheck(
    path="/health", interval_s=0.2, timeout_s=0.2, healthy_threshold=2, unhealthy_threshold=2
)

# wrk prints this line from its Lua ``done`` hook; the rest of its output is ignored.
_WRK_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"mean_us":%.1f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not reached within {timeout_s:g}s")


def listen_overflows() -> int:
    """The kernel's count of connections dropped because a listen backlog was full
    (``TcpExt: ListenOverflows``, machine-wide); a dropped SYN is retried after 1 s."""
    try:
        lines = Path("/proc/net/netstat").read_text(encoding="ascii").splitlines()
    except OSError:
        return -1
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(table.get("ListenOverflows", -1))
    return -1


def require_wrk() -> str:
    found = shutil.which("wrk")
    if not found:
        raise SystemExit(
            "wrk is not installed: run `WITH_BENCH=1 tools/system-deps.sh` "
            "(or `apt-get install -y wrk`)"
        )
    return found


# -- wrk ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: totals and latency percentiles (wrk's own, corrected for nothing)."""

    url: str
    connections: int
    threads: int
    seconds: float
    requests: int
    duration_s: float
    connect_errors: int
    read_errors: int
    write_errors: int
    non_2xx: int
    timeouts: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    @property
    def failed(self) -> int:
        """Requests a user would have seen fail: errors on the socket and non-2xx/3xx."""
        return (
            self.connect_errors
            + self.read_errors
            + self.write_errors
            + self.non_2xx
            + self.timeouts
        )

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "connections": self.connections,
            "threads": self.threads,
            "seconds": self.seconds,
            "requests": self.requests,
            "duration_s": round(self.duration_s, 3),
            "rps": round(self.rps, 1),
            "failed": self.failed,
            "errors": {
                "connect": self.connect_errors,
                "read": self.read_errors,
                "write": self.write_errors,
                "non_2xx": self.non_2xx,
                "timeout": self.timeouts,
            },
            "latency_ms": {
                "p50": self.p50_ms,
                "p90": self.p90_ms,
                "p99": self.p99_ms,
                "max": self.max_ms,
                "mean": self.mean_ms,
            },
        }


class WrkRun:
    """A wrk process running in the background; ``result()`` waits for it."""

    def __init__(
        self, proc: subprocess.Popen[str], script: Path, *, url: str, c: int, t: int, s: float
    ) -> None:
        self.proc = proc
        self.script = script
        self.url = url
        self.connections = c
        self.threads = t
        self.seconds = s

    def result(self) -> WrkResult:
        try:
            out, err = self.proc.communicate(timeout=self.seconds + 30)
        finally:
            self.script.unlink(missing_ok=True)
        line = next((ln for ln in out.splitlines() if ln.startswith("WRKJSON ")), None)
        if line is None:
            raise RuntimeError(f"wrk printed no summary (status {self.proc.returncode}): {err}")
        d = json.loads(line.removeprefix("WRKJSON "))
        return WrkResult(
            url=self.url,
            connections=self.connections,
            threads=self.threads,
            seconds=self.seconds,
            requests=int(d["requests"]),
            duration_s=int(d["duration_us"]) / 1e6,
            connect_errors=int(d["connect"]),
            read_errors=int(d["read"]),
            write_errors=int(d["write"]),
            non_2xx=int(d["status"]),
            timeouts=int(d["timeout"]),
            p50_ms=round(int(d["p50_us"]) / 1000, 2),
            p90_ms=round(int(d["p90_us"]) / 1000, 2),
            p99_ms=round(int(d["p99_us"]) / 1000, 2),
            max_ms=round(int(d["max_us"]) / 1000, 2),
            mean_ms=round(float(d["mean_us"]) / 1000, 2),
        )


def start_wrk(
    url: str, *, seconds: float, connections: int = 16, threads: int = 2, timeout_s: float = 2.0
) -> WrkRun:
    """Closed-loop load (each connection sends its next request as soon as the last answer
    came): the highest rate this machine sustains with that many connections."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"load is only sent to 127.0.0.1, not {url}")
    wrk = require_wrk()
    threads = min(threads, connections)  # wrk wants at least one connection per thread
    fd, name = tempfile.mkstemp(prefix="dops-wrk-", suffix=".lua")
    script = Path(name)
    with open(fd, "w", encoding="utf-8") as fh:
        fh.write(_WRK_LUA)
    proc = subprocess.Popen(
        [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            f"--timeout={timeout_s:g}s",
            "-s",
            str(script),
            url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return WrkRun(proc, script, url=url, c=connections, t=threads, s=seconds)


def run_wrk(url: str, *, seconds: float, connections: int = 16, threads: int = 2) -> WrkResult:
    return start_wrk(url, seconds=seconds, connections=connections, threads=threads).result()


# -- per-response probe ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """One response: when it was sent and answered (monotonic s), status, version."""

    sent: float
    done: float
    status: int
    version: str

    @property
    def ms(self) -> float:
        return (self.done - self.sent) * 1000


@dataclass
class Probe:
    """Keep-alive clients in threads that record every response (``Sample``) in order.

    ``with Probe(port, workers=2, max_seconds=60) as probe: ...``; a failed connection
    counts as status 0 and the client reconnects."""

    port: int
    workers: int = 1
    max_seconds: float = 120.0
    path: str = "/"
    pause_s: float = 0.0  # between a worker's requests: a gentler, steadier rate
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        conn: http.client.HTTPConnection | None = None
        local: list[Sample] = []
        while not self._stop.is_set() and time.monotonic() < deadline:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5.0)
            sent = time.monotonic()
            status, version = 0, ""
            try:
                conn.request("GET", self.path)
                resp = conn.getresponse()
                body = resp.read()
                status = resp.status
                if resp.will_close:
                    conn.close()
                    conn = None
                try:
                    version = str(json.loads(body).get("version", ""))
                except ValueError:
                    version = ""
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
            local.append(Sample(sent, time.monotonic(), status, version))
            if self.pause_s:
                self._stop.wait(self.pause_s)
            if len(local) >= 256:
                self.samples.extend(local)  # list.extend is atomic under the GIL
                local = []
        self.samples.extend(local)
        if conn is not None:
            conn.close()

    def __enter__(self) -> Probe:
        self._threads = [
            threading.Thread(target=self._run, daemon=True, name=f"probe-{i}")
            for i in range(self.workers)
        ]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        self.samples.sort(key=lambda s: s.done)


# -- the platform ---------------------------------------------------------------------------


def _write_project(root: Path, service: dict[str, Any]) -> Path:
    start = random.randrange(30000, 59000)
    doc = {
        "project": "bench",
        "environments": {
            ENV: {
                "platform": "local",
                "local": {
                    "replica_port_range": [start, start + 400],
                    "metrics_interval": 1,
                    "restart_backoff_max": 2,
                },
            }
        },
        "services": {"web": service},
    }
    path = root / "deployops.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Bench:
    """A running local platform for one benchmark and handles on it."""

    config: ProjectConfig
    paths: LocalPaths
    compute: LocalCompute
    traffic: HaproxyTraffic
    runtime: HaproxyRuntime

    @property
    def prod_port(self) -> int:
        return self.config.services["web"].port

    @property
    def test_port(self) -> int:
        return self.config.services["web"].listener_test_port

    def url(self, port: int | None = None, path: str = "/") -> str:
        return f"http://127.0.0.1:{port or self.prod_port}{path}"

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DEPLOYOPS, "-c", str(self.config.path), "-e", ENV, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def cli_json(self, *args: str) -> Any:
        out = self.cli("-o", "json", *args)
        if out.returncode != 0:
            raise RuntimeError(f"deployops {' '.join(args)} failed: {out.stderr.strip()}")
        return json.loads(out.stdout)

    def spec(self, version: str, **env: str) -> TaskDefinitionSpec:
        return TaskDefinitionSpec(
            family="web",
            version=version,
            port=0,
            command=("python", "app.py"),
            working_dir=str(SAMPLE_SERVICE),
            environment=(("APP_VERSION", version), *sorted(env.items())),
            health_check=FAST_HEALTH,
        )

    def start_colours(self, versions: dict[str, str], *, replicas: int) -> None:
        """Both target groups with their own version, healthy, without the engine."""
        for colour, version in versions.items():
            td = self.compute.register_task_definition(self.spec(version))
            self.traffic.create_target_group(colour, health_check=FAST_HEALTH)
            self.compute.create_service(
                colour, task_definition=td.ref, desired_count=replicas, target_group=colour
            )
        for colour in versions:

            def healthy(c: str = colour) -> bool:
                tg = self.traffic.describe_target_group(c)
                return tg is not None and tg.healthy_count == replicas

            wait_until(healthy, timeout_s=30, what=f"{colour} healthy")

    def replica_ports(self, colour: str) -> list[int]:
        tg = self.traffic.describe_target_group(colour)
        assert tg is not None
        return [int(t.address.rsplit(":", 1)[1]) for t in tg.targets]


@contextmanager
def platform(**service_overrides: Any) -> Iterator[Bench]:
    """``deployops local up`` on a temp project; ``down`` afterwards, whatever happened."""
    root = Path(tempfile.mkdtemp(prefix="dops-bench-"))
    service: dict[str, Any] = {
        "port": free_port(),
        "test_port": free_port(),
        "command": ["python", "app.py"],
        "working_dir": str(SAMPLE_SERVICE),
        "desired_count": 2,
        "health_check": {
            "path": "/health",
            "interval": 0.2,
            "timeout": 0.2,
            "healthy_threshold": 2,
            "unhealthy_threshold": 2,
        },
    }
    service.update(service_overrides)
    config = load_project(_write_project(root, service))
    clock = SystemClock()
    control.up(config, ENV, clock=clock)
    paths = LocalPaths.of(config, ENV)
    bench = Bench(
        config=config,
        paths=paths,
        compute=LocalCompute(client=DaemonClient(paths, ENV), clock=clock),
        traffic=HaproxyTraffic(client=DaemonClient(paths, ENV), clock=clock),
        runtime=HaproxyRuntime(paths.admin_socket),
    )
    try:
        yield bench
    finally:
        bench.compute.close()
        bench.traffic.close()
        control.down(config, ENV, clock=clock)
        shutil.rmtree(root, ignore_errors=True)
