"""The local platform's daemon: HAProxy, the replica supervisor and a small JSON API.

Started detached by ``deployops local up``::

    python -m deployops.drivers.local.daemon --project deployops.yaml --env development

It writes ``daemon.json`` (pid, API address, syslog port, HAProxy pid) into
``.deployops/local/<env>/`` once everything answers, or ``startup-error.json`` (message and
fix) and exits 2 if something is wrong. The API is loopback HTTP: ``POST /rpc`` with
``{"method": ..., "params": {...}}``; the drivers reach it the way the AWS drivers reach ECS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from deployops.clock import Clock, SystemClock
from deployops.config.project import ProjectConfig, load_project
from deployops.domain.model import TaskDefinitionSpec
from deployops.drivers.local import wire
from deployops.drivers.local.haproxy import (
    HaproxyProcess,
    ListenerSpec,
    max_connections,
    render_config,
)
from deployops.drivers.local.paths import LocalPaths, read_json, write_json_atomic
from deployops.drivers.local.supervisor import Supervisor, SupervisorSettings, kill_stale
from deployops.errors import ConfigError, DeployopsError, DriverError, NotFoundError
from deployops.ports import SecretStore

__all__ = ["Daemon", "error_to_json", "main"]


def listener_specs(project: ProjectConfig) -> list[ListenerSpec]:
    from deployops.domain.model import HealthCheck

    out: list[ListenerSpec] = []
    for name, svc in project.services.items():
        hc = svc.health_check
        out.append(
            ListenerSpec(
                service=name,
                prod_port=svc.port,
                test_port=svc.listener_test_port,
                health_check=HealthCheck(
                    path=hc.path,
                    interval_s=float(hc.interval),
                    timeout_s=float(hc.timeout),
                    healthy_threshold=hc.healthy_threshold,
                    unhealthy_threshold=hc.unhealthy_threshold,
                ),
                slots=max(20, 2 * svc.desired_count + 2),
            )
        )
    return out


def error_to_json(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, DeployopsError):
        out: dict[str, Any] = {
            "type": type(exc).__name__,
            "message": exc.message,
            "hint": exc.hint,
            "exit_code": exc.exit_code,
        }
        if isinstance(exc, ConfigError):
            out["path"] = exc.path
        if isinstance(exc, DriverError):
            out.update(driver=exc.driver, operation=exc.operation, retryable=exc.retryable)
        return out
    return {
        "type": "DriverError",
        "message": f"local: internal error: {exc!r}",
        "hint": None,
        "exit_code": 1,
        "driver": "local",
        "operation": "api",
        "retryable": False,
    }


def _port_owner(port: int) -> str:
    try:
        import psutil

        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == "LISTEN" and conn.pid:
                proc = psutil.Process(conn.pid)
                return f" by pid {conn.pid} ({proc.name()})"
    except Exception:  # noqa: BLE001 - best effort: the owner is a courtesy in the message
        return ""
    return ""


def check_ports_free(project: ProjectConfig, host: str) -> None:
    problems: list[str] = []
    for name, svc in project.services.items():
        for label, port in (("port", svc.port), ("test_port", svc.listener_test_port)):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((host, port))
                except OSError:
                    problems.append(
                        f"services.{name}.{label}: port {port} is in use{_port_owner(port)}"
                    )
    if problems:
        raise ConfigError(
            "; ".join(problems),
            path="services",
            file=str(project.path),
            hint="stop the process holding the port, or choose another port in deployops.yaml",
        )


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Daemon:
    """Everything the daemon process runs; ``start`` raises ``DeployopsError`` with a fix."""

    def __init__(
        self, *, project: ProjectConfig, environment: str, clock: Clock, paths: LocalPaths
    ) -> None:
        self.project = project
        self.environment = environment
        self.clock = clock
        self.paths = paths
        self.local = project.environment(environment).local
        self.listeners = listener_specs(project)
        self.haproxy = HaproxyProcess(paths=paths, clock=clock)
        self.supervisor: Supervisor | None = None
        self.server: ThreadingHTTPServer | None = None
        self.collector: Any = None
        self.store: Any = None
        self.syslog_port = 0
        self.shutdown_requested = threading.Event()
        self._server_thread: threading.Thread | None = None

    def _secret_store(self) -> SecretStore:
        """Where ``secret://`` references of task definitions are resolved on this platform:
        the environment's store from ``secrets.stores`` (SEC-1), read when a replica starts, so
        a replica restarted after a rotation gets the new current value."""
        from deployops.drivers.secrets import build_secret_store

        return build_secret_store(self.project, self.environment, clock=self.clock)

    # ------------------------------------------------------------------ start / stop
    def start(self) -> None:
        self.paths.ensure()
        self._refuse_second_daemon()
        host = self.local.host
        self.haproxy.binary = HaproxyProcess.find_binary()
        check_ports_free(self.project, host)
        try:
            from deployops.store import StateStore

            self.store = StateStore.open(
                self.project.state_url(), reconnect_s=float(self.project.state.reconnect)
            )
        except Exception as exc:  # noqa: BLE001 - events then go to the daemon log only
            sys.stderr.write(f"state store unavailable, events go to this log only: {exc!r}\n")
        rolling = {
            n: (s.rolling.maximum_percent, s.rolling.minimum_healthy_percent)
            for n, s in self.project.services.items()
        }
        self.supervisor = Supervisor(
            environment=self.environment,
            project_root=self.project.root,
            paths=self.paths,
            clock=self.clock,
            runtime=self.haproxy.runtime,
            listeners=self.listeners,
            settings=SupervisorSettings(
                host=host,
                port_range=self.local.replica_port_range,
                backoff_max_s=float(self.local.restart_backoff_max),
                drain_timeout_s=float(self.local.drain_timeout),
            ),
            store=self.store,
            rolling=rolling,
            secrets=self._secret_store().get,
        )
        stale = self.supervisor.load()
        kill_stale(stale)
        self.supervisor.write_map_files()
        self.syslog_port = free_udp_port()
        self.paths.haproxy_cfg.write_text(
            render_config(
                paths=self.paths,
                listeners=self.listeners,
                syslog_port=self.syslog_port,
                host=host,
                maxconn=max_connections(),
            ),
            encoding="utf-8",
        )
        self.haproxy.start()
        self.supervisor.start()
        self._start_metrics()
        self._start_api()
        self._write_daemon_json()

    def _refuse_second_daemon(self) -> None:
        info = read_json(self.paths.daemon_json)
        if info and _pid_alive(int(info.get("pid", 0))) and int(info["pid"]) != os.getpid():
            raise DriverError(
                "local",
                "start daemon",
                f"a daemon already runs for this environment (pid {info['pid']})",
                hint="`deployops local status` shows it; `deployops local down` stops it",
            )
        stale_haproxy = int((info or {}).get("haproxy_pid", 0))
        if stale_haproxy and _is_haproxy(stale_haproxy):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(stale_haproxy, signal.SIGKILL)

    def _start_metrics(self) -> None:
        if self.store is None or self.supervisor is None:
            return
        try:
            from deployops.drivers.local.metrics import (  # type: ignore[attr-defined,unused-ignore]
                MetricsCollector,
            )
        except ImportError as exc:
            sys.stderr.write(f"metrics collector not available: {exc}\n")
            return
        try:
            self.collector = MetricsCollector(
                store=self.store,
                clock=self.clock,
                interval_s=float(self.local.metrics_interval),
                retention_s=float(self.local.metrics_retention),
                syslog_port=self.syslog_port,
                admin_socket=self.paths.admin_socket,
                replicas=self.supervisor.replica_pids,
            )
            self.collector.start()
        except Exception as exc:  # noqa: BLE001 - the platform runs without metrics
            sys.stderr.write(f"metrics collector failed to start: {exc!r}\n")
            self.collector = None

    def _start_api(self) -> None:
        daemon = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; on a kept-alive connection Nagle's
            # algorithm held the body back for the client's delayed ACK: 40 ms a call.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the API is local and chatty."""

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/ping":
                    self._reply(200, {"ok": True, "pid": os.getpid()})
                else:
                    self._reply(404, {"ok": False, "error": {"message": "not found"}})

            def do_POST(self) -> None:
                if self.path != "/rpc":
                    self._reply(404, {"ok": False, "error": {"message": "not found"}})
                    return
                length = int(self.headers.get("Content-Length", "0"))
                try:
                    req = json.loads(self.rfile.read(length) or b"{}")
                    result = daemon.call(str(req["method"]), dict(req.get("params") or {}))
                except Exception as exc:  # noqa: BLE001 - every failure becomes a reply
                    self._reply(200, {"ok": False, "error": error_to_json(exc)})
                    return
                self._reply(200, {"ok": True, "result": result})

        self.server = ThreadingHTTPServer((self.local.host, 0), Handler)
        self.server.daemon_threads = True
        self._server_thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._server_thread.start()

    @property
    def api_address(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _write_daemon_json(self) -> None:
        write_json_atomic(
            self.paths.daemon_json,
            {
                "pid": os.getpid(),
                "api": self.api_address,
                "environment": self.environment,
                "project": str(self.project.path),
                "syslog_port": self.syslog_port,
                "haproxy_pid": self.haproxy.pid,
                "admin_socket": str(self.paths.admin_socket),
                "master_socket": str(self.paths.master_socket),
                "started_at": self.clock.now().isoformat(),
            },
        )

    def serve(self) -> None:
        """Until ``shutdown`` is requested: watch HAProxy and restart it if it dies (checked
        every 0.1 s: while it is down, every connection to a listener is refused)."""
        while not self.shutdown_requested.wait(0.1):
            if not self.haproxy.alive():
                sys.stderr.write("HAProxy exited; restarting it\n")
                t0 = self.clock.monotonic()
                try:
                    self.haproxy.start()
                    if self.supervisor:
                        self.supervisor.write_map_files()
                        self.supervisor.reapply_registrations()
                    self._write_daemon_json()
                except DeployopsError as exc:
                    sys.stderr.write(f"could not restart HAProxy: {exc}\n")
                else:
                    if self.supervisor:
                        self.supervisor.platform_event(
                            "platform.haproxy_restarted",
                            f"HAProxy exited; the platform restarted it in "
                            f"{self.clock.monotonic() - t0:.1f}s (pid {self.haproxy.pid}), "
                            "listeners and replicas as they were",
                        )

    def stop(self) -> None:
        if self.collector is not None:
            with contextlib.suppress(Exception):
                self.collector.stop()
        if self.supervisor is not None:
            self.supervisor.shutdown()
        self.haproxy.stop()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.store is not None:
            with contextlib.suppress(Exception):
                self.store.close()
        info = read_json(self.paths.daemon_json)
        if info and int(info.get("pid", 0)) == os.getpid():
            self.paths.daemon_json.unlink(missing_ok=True)

    # ------------------------------------------------------------------ API
    def call(self, method: str, params: dict[str, Any]) -> Any:
        handler = self._methods().get(method)
        if handler is None:
            raise NotFoundError(f"unknown API method {method!r}", path="method")
        return handler(params)

    def _methods(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        sup = self.supervisor
        assert sup is not None

        def register(p: dict[str, Any]) -> Any:
            spec: TaskDefinitionSpec = wire.spec_from(p["spec"])
            return wire.task_definition_to(sup.register_task_definition(spec))

        def describe_service(p: dict[str, Any]) -> Any:
            state = sup.describe_service(p["name"])
            return wire.service_to(state) if state else None

        def describe_tg(p: dict[str, Any]) -> Any:
            tg = sup.describe_target_group(p["name"])
            return wire.target_group_to(tg) if tg else None

        def delete_service(p: dict[str, Any]) -> Any:
            sup.delete_service(p["name"])
            return None

        def delete_tg(p: dict[str, Any]) -> Any:
            sup.delete_target_group(p["name"])
            return None

        def shutdown(_: dict[str, Any]) -> Any:
            self.shutdown_requested.set()
            return {"pid": os.getpid()}

        def metrics(p: dict[str, Any]) -> Any:
            """Stop or start the metrics collector (as an agent is stopped for maintenance,
            or dies): with it stopped no samples are written, and the rules that read them
            say they have no data."""
            action = str(p.get("action", ""))
            if action == "stop" and self.collector is not None:
                self.collector.stop()
                self.collector = None
                sup.platform_event("platform.metrics_stopped", "the metrics collector stopped")
            elif action == "start" and self.collector is None:
                self._start_metrics()
                if self.collector is not None:
                    sup.platform_event(
                        "platform.metrics_started", "the metrics collector started", level="info"
                    )
            elif action not in ("stop", "start"):
                raise ConfigError(f"unknown metrics action {action!r}", path="action")
            return {"running": self.collector is not None}

        def status(_: dict[str, Any]) -> Any:
            return {
                "pid": os.getpid(),
                "haproxy_pid": self.haproxy.pid,
                "haproxy_running": self.haproxy.alive(),
                "haproxy_workers": self.haproxy.worker_pids(),
                "replica_pids": sup.all_pids(),
                "syslog_port": self.syslog_port,
                "metrics": self.collector is not None,
                **sup.status(),
            }

        return {
            "register_task_definition": register,
            "describe_task_definition": lambda p: wire.task_definition_to(
                sup.describe_task_definition(p["ref"])
            ),
            "create_service": lambda p: wire.service_to(
                sup.create_service(
                    p["name"],
                    task_definition=p["task_definition"],
                    desired_count=int(p["desired_count"]),
                    target_group=p["target_group"],
                )
            ),
            "update_service": lambda p: wire.service_to(
                sup.update_service(
                    p["name"],
                    task_definition=p.get("task_definition"),
                    desired_count=p.get("desired_count"),
                )
            ),
            "describe_service": describe_service,
            "delete_service": delete_service,
            "list_services": lambda _p: sup.list_services(),
            "create_target_group": lambda p: wire.target_group_to(
                sup.create_target_group(p["name"], wire.health_check_from(p["health_check"]))
            ),
            "delete_target_group": delete_tg,
            "describe_target_group": describe_tg,
            "list_target_groups": lambda _p: sup.list_target_groups(),
            "describe_listener": lambda p: wire.listener_to(sup.describe_listener(p["name"])),
            "switch_listener": lambda p: wire.listener_to(
                sup.switch_listener(p["name"], p["target_group"])
            ),
            "set_weights": lambda p: wire.listener_to(
                sup.set_weights(p["name"], {str(k): int(v) for k, v in p["weights"].items()})
            ),
            "list_listeners": lambda _p: [wire.listener_to(li) for li in sup.list_listeners()],
            "status": status,
            "shutdown": shutdown,
            "metrics": metrics,
        }


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_haproxy(pid: int) -> bool:
    try:
        import psutil

        return "haproxy" in psutil.Process(pid).name()
    except Exception:  # noqa: BLE001 - psutil raises several kinds for a vanished process
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deployops-local-daemon")
    parser.add_argument("--project", required=True, type=Path)
    parser.add_argument("--env", required=True)
    args = parser.parse_args(argv)
    clock = SystemClock()
    daemon: Daemon | None = None
    paths: LocalPaths | None = None
    try:
        project = load_project(args.project)
        paths = LocalPaths.of(project, args.env)
        paths.ensure()
        paths.startup_error.unlink(missing_ok=True)
        daemon = Daemon(project=project, environment=args.env, clock=clock, paths=paths)
        signal.signal(
            signal.SIGTERM, lambda *_: daemon.shutdown_requested.set() if daemon else None
        )
        signal.signal(signal.SIGINT, lambda *_: daemon.shutdown_requested.set() if daemon else None)
        daemon.start()
    except Exception as exc:  # noqa: BLE001 - reported to `local up` through a file
        sys.stderr.write(f"daemon failed to start: {exc}\n")
        if paths is not None:
            write_json_atomic(paths.startup_error, error_to_json(exc))
        if daemon is not None:
            daemon.stop()
        return 2
    sys.stderr.write(f"daemon {os.getpid()} serving {daemon.api_address}\n")
    daemon.serve()
    daemon.stop()
    sys.stderr.write("daemon stopped\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
