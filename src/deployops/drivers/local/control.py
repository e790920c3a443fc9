"""``deployops local up|down|status``: start, stop and inspect the local platform's daemon.

The CLI stays thin; this module does the work. ``up`` twice is harmless, ``down`` leaves no
process behind (it checks every pid the daemon reported and kills what is left).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from typing import Any

from deployops.clock import Clock
from deployops.config.project import ProjectConfig
from deployops.drivers.local.client import DaemonClient, error_from_json
from deployops.drivers.local.paths import LocalPaths, read_json
from deployops.errors import DeployopsError, DriverError, TimeoutError_

__all__ = ["down", "pid_alive", "status", "up"]


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie child is reaped and counts as gone)."""
    if pid <= 0:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        import psutil

        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except Exception:  # noqa: BLE001 - psutil.NoSuchProcess and friends: gone
        return False


def _running(paths: LocalPaths, environment: str) -> tuple[dict[str, Any] | None, DaemonClient]:
    client = DaemonClient(paths, environment)
    info = read_json(paths.daemon_json)
    if info and pid_alive(int(info.get("pid", 0))) and client.ping():
        return info, client
    return None, client


def up(
    project: ProjectConfig, environment: str, *, clock: Clock, timeout_s: float = 30.0
) -> dict[str, Any]:
    """Start the daemon (or find it running) and return its status once HAProxy answers."""
    project.environment(environment)
    paths = LocalPaths.of(project, environment)
    info, client = _running(paths, environment)
    if info is not None:
        result = status(project, environment)
        result["already_running"] = True
        return result
    paths.ensure()
    paths.startup_error.unlink(missing_ok=True)
    paths.daemon_json.unlink(missing_ok=True)
    with paths.daemon_log.open("ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deployops.drivers.local.daemon",
                "--project",
                str(project.path.resolve()),
                "--env",
                environment,
            ],
            cwd=str(project.root),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = clock.monotonic() + timeout_s
    while clock.monotonic() < deadline:
        if proc.poll() is not None:
            err = read_json(paths.startup_error)
            if err:
                raise error_from_json(err)
            raise DriverError(
                "local",
                "start daemon",
                f"the daemon exited with status {proc.returncode}: {_tail(paths)}",
                hint=f"see {paths.daemon_log}",
            )
        info = read_json(paths.daemon_json)
        if info and int(info.get("pid", 0)) == proc.pid and client.ping():
            result = status(project, environment)
            result["already_running"] = False
            client.close()
            return result
        clock.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)
    raise TimeoutError_(
        "local", "start daemon", timeout_s, hint=f"see {paths.daemon_log} for what it waited on"
    )


def status(project: ProjectConfig, environment: str) -> dict[str, Any]:
    """What runs: daemon and HAProxy pids, listeners and where they point, services."""
    project.environment(environment)
    paths = LocalPaths.of(project, environment)
    info, client = _running(paths, environment)
    if info is None:
        return {"running": False, "environment": environment, "state_dir": str(paths.root)}
    try:
        live = client.call("status")
    finally:
        client.close()
    return {
        "running": True,
        "environment": environment,
        "state_dir": str(paths.root),
        "api": info.get("api"),
        "daemon_pid": int(info["pid"]),
        "haproxy_pid": live.get("haproxy_pid"),
        "haproxy_running": live.get("haproxy_running"),
        "haproxy_workers": live.get("haproxy_workers", []),
        "replica_pids": live.get("replica_pids", []),
        "syslog_port": info.get("syslog_port"),
        "metrics": live.get("metrics", False),
        "listeners": live.get("listeners", []),
        "services": [_with_logs(paths, s) for s in live.get("services", [])],
        "logs": str(paths.logs),
    }


def _with_logs(paths: LocalPaths, service: dict[str, Any]) -> dict[str, Any]:
    """A service of ``status`` with each task's log file (what a failed health wait points
    the user to)."""
    tasks = [
        {**t, "log": str(paths.task_log(service["name"], t["task_id"]))}
        for t in service.get("tasks", [])
    ]
    return {**service, "tasks": tasks}


def down(
    project: ProjectConfig, environment: str, *, clock: Clock, timeout_s: float = 30.0
) -> dict[str, Any]:
    """Stop replicas, HAProxy and the daemon; then make sure none of their pids is left."""
    project.environment(environment)
    paths = LocalPaths.of(project, environment)
    info = read_json(paths.daemon_json) or {}
    daemon_pid = int(info.get("pid", 0))
    pids: set[int] = set()
    if info.get("haproxy_pid"):
        pids.add(int(info["haproxy_pid"]))
    state = read_json(paths.state_json) or {}
    pids.update(int(p) for p, _ in state.get("replicas") or () if p)
    was_running = pid_alive(daemon_pid)
    if was_running:
        client = DaemonClient(paths, environment)
        try:
            live = client.call("status")
            pids.update(int(p) for p in live.get("replica_pids", []))
            pids.update(int(p) for p in live.get("haproxy_workers", []))
            client.call("shutdown")
        except DeployopsError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(daemon_pid, signal.SIGTERM)
        finally:
            client.close()
        deadline = clock.monotonic() + timeout_s
        while pid_alive(daemon_pid) and clock.monotonic() < deadline:
            clock.sleep(0.05)
        if pid_alive(daemon_pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(daemon_pid, signal.SIGKILL)
    leftovers = sorted(p for p in pids if _is_ours(p) and pid_alive(p))
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = clock.monotonic() + 5.0
    while any(pid_alive(p) for p in leftovers) and clock.monotonic() < deadline:
        clock.sleep(0.05)
    still = [p for p in leftovers if pid_alive(p)]
    paths.daemon_json.unlink(missing_ok=True)
    if still:
        raise DriverError(
            "local",
            "stop",
            f"processes {', '.join(map(str, still))} survived SIGKILL",
            hint="inspect them with `ps -o pid,cmd -p PID`",
        )
    return {
        "environment": environment,
        "was_running": was_running,
        "daemon_pid": daemon_pid or None,
        "killed_leftovers": leftovers,
    }


def _is_ours(pid: int) -> bool:
    """Only kill a recorded pid if it still looks like HAProxy or a replica (pids get reused)."""
    try:
        import psutil

        proc = psutil.Process(pid)
        env = proc.environ() if proc.name() != "haproxy" else {}
        return proc.name() == "haproxy" or "DEPLOYOPS_TASK_ID" in env
    except Exception:  # noqa: BLE001 - gone or not ours to inspect
        return False


def _tail(paths: LocalPaths, lines: int = 5) -> str:
    try:
        text = paths.daemon_log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:])
