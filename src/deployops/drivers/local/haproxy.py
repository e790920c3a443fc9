"""HAProxy 2.6 for the local platform: the configuration, the process and its runtime API.

The listener switch is ``set map`` on the admin socket, never a reload: a reload takes
60-150 ms, mixes old and new versions meanwhile and drops idle keep-alive clients, while
``set map`` takes effect in a millisecond and loses no request. A weighted split (canary and
linear shifts) is a second map, ``{service}.weights.map``: per listener, the percent of its
requests sent to the other colour, changed with ``set map`` too. Each service has two fixed
backends, ``{service}-blue`` and ``{service}-green``, with a ``server-template`` of slots that
are filled at run time (``set server ... addr``).
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from deployops.clock import Clock
from deployops.domain.model import HealthCheck
from deployops.domain.names import colours
from deployops.drivers.local.paths import LocalPaths
from deployops.errors import ConfigError, DriverError

__all__ = [
    "COLOURS",
    "SLOT_PREFIX",
    "HaproxyProcess",
    "HaproxyRuntime",
    "ListenerSpec",
    "ServerStat",
    "backends_of",
    "render_config",
    "runtime_exchange",
    "split_key",
]

COLOURS = ("blue", "green")
SLOT_PREFIX = "s"
DRIVER = "haproxy"


@dataclass(frozen=True, slots=True)
class ListenerSpec:
    """One service's listeners and backends as written into ``haproxy.cfg``."""

    service: str
    prod_port: int
    test_port: int
    health_check: HealthCheck
    slots: int = 20


def backends_of(service: str) -> tuple[str, str]:
    return colours(service)


# The transaction variable holding the split percent of the request's listener.
SPLIT_VAR = "txn.dops_split_pct"


def split_key(key: str) -> str:
    """The map key naming where a listener's weighted share goes (``prod`` -> ``prod-split``);
    the percent itself is under ``key`` in the weights map."""
    return f"{key}-split"


def max_connections() -> int:
    """A ``maxconn`` HAProxy can honour: above the file-descriptor limit it refuses to start."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    limit = 65536 if soft == resource.RLIM_INFINITY else soft
    return max(64, min(10000, (limit - 200) // 2))


def render_config(
    *,
    paths: LocalPaths,
    listeners: list[ListenerSpec],
    syslog_port: int,
    host: str = "127.0.0.1",
    maxconn: int | None = None,
) -> str:
    """The whole ``haproxy.cfg``. Listeners pick their backend through the service's map file."""
    conn = maxconn or max_connections()
    lines = [
        "global",
        f"  maxconn {conn}",
        f"  stats socket {paths.admin_socket} level admin mode 600",
        f"  server-state-file {paths.server_state}",
        f"  log 127.0.0.1:{syslog_port} local0",
        "",
        "defaults",
        "  mode http",
        "  log global",
        "  option http-ignore-probes",  # empty preconnects stay out of the 4xx counts
        "  option redispatch",
        # Keep-alive on both sides (HAProxy's default, ``option http-keep-alive``): every
        # request is routed on its own by the ``use_backend`` map lookup, also on a kept-alive
        # client connection, and HAProxy changes the server connection when the backend
        # changes, so a ``set map`` switch moves the very next request (tested). Idle server
        # connections are reused between requests of the same backend (``http-reuse safe``).
        "  option http-keep-alive",
        "  http-reuse safe",
        "  retries 2",
        "  timeout connect 2s",
        "  timeout client 30s",
        "  timeout server 30s",
        "  timeout http-keep-alive 10s",
        "  load-server-state-from-file global",
        "",
    ]
    for spec in listeners:
        blue, green = backends_of(spec.service)
        mapfile = paths.map_file(spec.service)
        weights = paths.weights_map_file(spec.service)
        for key, port, default in (("prod", spec.prod_port, blue), ("test", spec.test_port, green)):
            other = green if default == blue else blue
            lines += [
                f"frontend {spec.service}-{key}",
                f"  bind {host}:{port}",
                "  log global",
                '  log-format "DOPS %b %s %ST %Tr %Ta"',
                # The weighted split: the percent of this listener's requests sent to the
                # other colour is read per request from the weights map into a variable; a
                # request goes there when rand(100) - percent < 0, i.e. with that probability
                # (0: never, 100: always). `set map` on either map changes it, never a reload.
                # The per-colour backends stay, so the log line names the colour that served.
                f"  http-request set-var({SPLIT_VAR}) str({key}),map_str_int({weights},0)",
                f"  use_backend %[str({split_key(key)}),map({mapfile},{other})] "
                f"if {{ rand(100),sub({SPLIT_VAR}) -m int lt 0 }}",
                f"  use_backend %[str({key}),map({mapfile},{default})]",
                "",
            ]
        hc = spec.health_check
        inter = max(100, int(hc.interval_s * 1000))
        timeout = max(50, int(hc.timeout_s * 1000))
        for backend in (blue, green):
            lines += [
                f"backend {backend}",
                "  balance roundrobin",
                f"  option httpchk GET {hc.path}",
                f"  http-check expect status {hc.expected_status}",
                f"  timeout check {timeout}ms",
                f"  server-template {SLOT_PREFIX} 1-{spec.slots} 127.0.0.1:1 disabled check "
                f"inter {inter} fastinter {inter} downinter {inter} "
                f"rise {hc.healthy_threshold} fall {hc.unhealthy_threshold}",
                "",
            ]
    return "\n".join(lines) + "\n"


def runtime_exchange(socket_path: Path, line: str, *, timeout_s: float) -> str:
    """Send one command line to HAProxy's runtime API over its UNIX socket and read the answer
    to the end. Raises ``OSError``; callers say what failed."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(str(socket_path))
        sock.sendall(line.encode() + b"\n")
        chunks: list[bytes] = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class ServerStat:
    """One server row of ``show stat`` (read by the traffic driver and the metrics collector)."""

    backend: str
    server: str
    status: str  # UP, UP 1/3, DOWN, DOWN 1/2, MAINT, MAINT (via x/y), DRAIN, NOLB, no check
    check_status: str = ""
    address: str = ""
    current_sessions: int = 0
    total_sessions: int = 0

    @property
    def checked(self) -> bool:
        """Whether HAProxy health-checks this server ("no check" servers are not)."""
        return bool(self.check_status) or self.status != "no check"

    @property
    def maint(self) -> bool:
        return self.status.startswith("MAINT")

    @property
    def up(self) -> bool:
        # "no check" servers are considered up by HAProxy and receive traffic.
        return self.status.startswith("UP") or self.status == "no check"

    @property
    def down(self) -> bool:
        return self.status.startswith("DOWN")


class HaproxyRuntime:
    """The admin socket (``stats socket ... level admin``). One short connection per command."""

    def __init__(self, socket_path: Path, *, timeout_s: float = 5.0) -> None:
        self.socket_path = socket_path
        self.timeout_s = timeout_s
        self._lock = threading.Lock()

    def command(self, cmd: str) -> str:
        """Send one command line (``;`` separates commands run back to back)."""
        if "\n" in cmd:
            raise ValueError("one line per command")
        try:
            with self._lock:
                return runtime_exchange(self.socket_path, cmd, timeout_s=self.timeout_s)
        except OSError as exc:
            raise DriverError(
                DRIVER,
                cmd.split(" ", 2)[0] + " " + (cmd.split(" ", 2)[1] if " " in cmd else ""),
                f"admin socket {self.socket_path} did not answer: {exc}",
                retryable=True,
                hint="check that HAProxy runs: `deployops local status`",
            ) from exc

    def ping(self) -> bool:
        try:
            return "Name: HAProxy" in self.command("show info")
        except DriverError:
            return False

    def info(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for line in self.command("show info").splitlines():
            key, sep, value = line.partition(":")
            if sep:
                out[key.strip()] = value.strip()
        return out

    def servers(self, backend: str | None = None) -> list[ServerStat]:
        text = self.command("show stat")
        lines = text.splitlines()
        if not lines or not lines[0].startswith("# "):
            raise DriverError(DRIVER, "show stat", f"unexpected answer: {text[:200]!r}")
        header = lines[0][2:].split(",")
        idx = {name: i for i, name in enumerate(header)}
        out: list[ServerStat] = []
        for line in lines[1:]:
            if not line:
                continue
            row = line.split(",")
            px, sv = row[idx["pxname"]], row[idx["svname"]]
            if sv in ("FRONTEND", "BACKEND") or (backend and px != backend):
                continue
            out.append(
                ServerStat(
                    backend=px,
                    server=sv,
                    status=row[idx["status"]],
                    check_status=row[idx["check_status"]],
                    address=row[idx["addr"]] if "addr" in idx else "",
                    current_sessions=int(row[idx["scur"]] or 0),
                    total_sessions=int(row[idx["stot"]] or 0),
                )
            )
        return out

    def backends(self) -> list[str]:
        names: list[str] = []
        for line in self.command("show backend").splitlines():
            if line and not line.startswith("#"):
                names.append(line.strip())
        return names

    def show_map(self, map_file: Path) -> dict[str, str]:
        text = self.command(f"show map {map_file}")
        out: dict[str, str] = {}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0].startswith("0x"):
                out[parts[1]] = parts[2]
            elif line.strip() and not parts[0].startswith("0x"):
                raise DriverError(DRIVER, "show map", line.strip())
        return out

    def set_map(self, map_file: Path, key: str, value: str) -> None:
        answer = self.command(f"set map {map_file} {key} {value}").strip()
        if answer:
            raise DriverError(DRIVER, "set map", answer)

    def _expect_quiet(self, cmd: str) -> None:
        answer = self.command(cmd).strip()
        # "no need to change the addr" is HAProxy's note that only the port changed.
        problems = [ln for ln in answer.splitlines() if ln and "no need to change" not in ln]
        if any(("changed from" not in p and "updated" not in p) for p in problems):
            raise DriverError(DRIVER, cmd.split(";")[0], "; ".join(problems))

    def add_server(self, backend: str, slot: str, port: int, host: str = "127.0.0.1") -> None:
        """Fill a slot so that it takes traffic only after ``rise`` successful checks.

        Leaving MAINT with ``state ready`` marks a server UP at once, before any check, and
        ``health down`` is ignored while in MAINT. Going through DRAIN (weight 0, checks run)
        and forcing ``health down`` there makes ``state ready`` start from DOWN."""
        name = f"{backend}/{slot}"
        self._expect_quiet(
            f"set server {name} addr {host} port {port}; set server {name} state drain; "
            f"set server {name} health down; set server {name} state ready"
        )

    def restore_server(
        self, backend: str, slot: str, port: int, host: str = "127.0.0.1", *, up: bool
    ) -> None:
        """Put a replica back into its slot after HAProxy restarted. One the supervisor saw
        healthy just before (``up``) serves at once (``state ready`` from MAINT marks it UP
        before any check, as a server-state file would); its checks then run as usual. A new
        freshly restarted HAProxy otherwise answered 503 until ``rise`` checks passed."""
        if not up:
            self.add_server(backend, slot, port, host)
            return
        name = f"{backend}/{slot}"
        self._expect_quiet(
            f"set server {name} addr {host} port {port}; set server {name} state ready"
        )

    def drain_server(self, backend: str, slot: str) -> None:
        self._expect_quiet(f"set server {backend}/{slot} state drain")

    def remove_server(self, backend: str, slot: str) -> None:
        self._expect_quiet(f"set server {backend}/{slot} state maint")


class HaproxyProcess:
    """HAProxy in master-worker mode (``-W -S master.sock``), a child of the daemon."""

    def __init__(self, *, paths: LocalPaths, clock: Clock, binary: str = "haproxy") -> None:
        self.paths = paths
        self.clock = clock
        self.binary = binary
        self.proc: subprocess.Popen[bytes] | None = None
        self.runtime = HaproxyRuntime(paths.admin_socket)

    @staticmethod
    def find_binary(name: str = "haproxy") -> str:
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
        if not found:
            raise ConfigError(
                "HAProxy is not installed (no `haproxy` on PATH or in /usr/sbin)",
                path="environments.*.platform",
                hint="install HAProxy 2.6 or newer: `apt-get install haproxy`",
            )
        return found

    def validate(self, config: Path) -> None:
        """``haproxy -c``: the master socket's reload says nothing on a bad config."""
        result = subprocess.run(
            [self.binary, "-c", "-q", "-f", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise DriverError(
                DRIVER,
                "check configuration",
                f"{config} is invalid: " + " | ".join(detail[-5:]),
                hint="see the message above; `haproxy -c -f` reproduces it",
            )

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def worker_pids(self) -> list[int]:
        try:
            import psutil

            return [c.pid for c in psutil.Process(self.pid).children()] if self.pid else []
        except Exception:  # noqa: BLE001 - psutil raises several kinds for a vanished process
            return []

    def start(self, *, timeout_s: float = 10.0) -> None:
        self.validate(self.paths.haproxy_cfg)
        for sock in (self.paths.admin_socket, self.paths.master_socket):
            sock.unlink(missing_ok=True)
        log = self.paths.haproxy_log.open("ab")
        try:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    "-W",
                    "-S",
                    f"{self.paths.master_socket},mode,600",
                    "-f",
                    str(self.paths.haproxy_cfg),
                    "-p",
                    str(self.paths.haproxy_pid),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = self.clock.monotonic() + timeout_s
        while self.clock.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = _tail(self.paths.haproxy_log)
                self.proc = None
                raise DriverError(
                    DRIVER,
                    "start",
                    f"HAProxy exited at start: {tail}",
                    hint=f"see {self.paths.haproxy_log}; a port in use or a bad setting is "
                    "the usual cause",
                )
            if self.paths.admin_socket.exists() and self.runtime.ping():
                return
            self.clock.sleep(0.05)
        self.stop()
        raise DriverError(
            DRIVER,
            "start",
            f"the admin socket did not answer within {timeout_s:g}s",
            hint=f"see {self.paths.haproxy_log}",
        )

    def stop(self, *, timeout_s: float = 5.0) -> None:
        proc = self.proc
        if proc is None:
            return
        workers = self.worker_pids()
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=timeout_s)
        for pid in workers:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self.proc = None
        for sock in (self.paths.admin_socket, self.paths.master_socket):
            sock.unlink(missing_ok=True)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"
