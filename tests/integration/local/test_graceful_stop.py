"""The sample service stops gracefully on SIGTERM: it stops accepting, finishes the requests in
flight, closes its connections and exits 0 within its grace period, so a replica restart
during a deploy or a rotation loses no request even when the platform's drain gives up early.

Real processes: the sample service itself, and the local platform (HAProxy, the supervisor)
replacing replicas rolling under loopback load with slow requests in flight and a drain
timeout shorter than those requests (``local.drain_timeout``), so SIGTERM arrives while they
run. ``FAULT_EXIT_ON_SIGTERM=1`` is the control: the same service exiting at once cuts them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from deployops.clock import SystemClock
from deployops.config.project import load_project
from deployops.drivers.local import control
from deployops.drivers.local.client import DaemonClient
from deployops.drivers.local.compute import LocalCompute
from deployops.drivers.local.load import Load
from deployops.drivers.local.paths import LocalPaths
from deployops.drivers.local.traffic import HaproxyTraffic
from tests.fixtures_local import (
    ENV,
    FAST_HEALTH,
    SAMPLE_SERVICE,
    LocalPlatformHandle,
    free_port,
    write_project,
)

pytestmark = pytest.mark.integration

wait_until = LocalPlatformHandle.wait_until


def _connected(port: int) -> int:
    """Client connections established to ``port`` (from this test process)."""
    me = psutil.Process()
    return sum(
        1
        for c in me.net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


def _refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except OSError:
        return True


@pytest.mark.parametrize("graceful", [True, False], ids=["graceful", "exit-at-once"])
def test_sigterm_finishes_requests_in_flight_then_exits(graceful: bool) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FAULT_", "DEPLOYOPS_"))},
        "PORT": str(port),
        "FAULT_LATENCY_MS": "1200",
        "SHUTDOWN_GRACE_S": "5",
    }
    if not graceful:
        env["FAULT_EXIT_ON_SIGTERM"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=SAMPLE_SERVICE,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: _health(port) == 200, timeout_s=15, what="the sample service answering")
        answers: list[object] = []

        def slow() -> None:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
                answers.append((r.status_code, r.headers.get("connection", "")))
            except httpx.HTTPError as exc:
                answers.append(type(exc).__name__)

        threads = [threading.Thread(target=slow) for _ in range(4)]
        for th in threads:
            th.start()
        wait_until(lambda: _connected(port) >= 4, timeout_s=5, what="4 requests in flight")
        proc.send_signal(signal.SIGTERM)
        if graceful:
            wait_until(lambda: _refused(port), timeout_s=2, what="new connections refused")
        for th in threads:
            th.join(timeout=10)
        code = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read() if proc.stderr else ""
    if graceful:
        assert answers == [(200, "close")] * 4, answers
        assert code == 0, err
        assert "stopped gracefully" in err
    else:
        assert code == -signal.SIGTERM
        assert all(isinstance(a, str) for a in answers), answers  # every one was cut


def _health(port: int) -> int:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code
    except httpx.HTTPError:
        return 0


@pytest.fixture
def short_drain() -> Iterator[LocalPlatformHandle]:
    """The local platform with a drain of 0.2 s: SIGTERM reaches a replica while its slow
    requests still run."""
    root = Path(tempfile.mkdtemp(prefix="dops-"))
    path = write_project(root)
    doc = yaml.safe_load(path.read_text())
    doc["environments"][ENV]["local"]["drain_timeout"] = "0.2s"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    project = load_project(path)
    clock = SystemClock()
    control.up(project, ENV, clock=clock)
    paths = LocalPaths.of(project, ENV)
    handle = LocalPlatformHandle(
        project=project,
        environment=ENV,
        paths=paths,
        compute=LocalCompute(client=DaemonClient(paths, ENV), clock=clock),
        traffic=HaproxyTraffic(client=DaemonClient(paths, ENV), clock=clock),
    )
    try:
        yield handle
    finally:
        handle.compute.close()
        handle.traffic.close()
        report = control.down(project, ENV, clock=clock)
        shutil.rmtree(root, ignore_errors=True)
        assert report["killed_leftovers"] == [], report


def test_replica_restart_under_load_with_slow_requests_loses_none(
    short_drain: LocalPlatformHandle,
) -> None:
    p = short_drain
    spec = p.spec("1.0.0", FAULT_LATENCY_MS="700")
    td = p.compute.register_task_definition(spec)
    p.traffic.create_target_group("web-blue", health_check=FAST_HEALTH)
    p.compute.create_service(
        "web-blue", task_definition=td.ref, desired_count=2, target_group="web-blue"
    )

    def in_service(ref: str) -> bool:
        svc = p.compute.describe_service("web-blue")
        group = p.traffic.describe_target_group("web-blue")
        live = [t for t in svc.tasks if t.state.value != "STOPPED"] if svc else []
        return (
            svc is not None
            and group is not None
            and group.healthy_count == 2
            and len(live) == 2
            and all(t.task_definition == ref and t.healthy for t in live)
        )

    wait_until(lambda: in_service(td.ref), timeout_s=30, what="two replicas in service")
    p.traffic.switch_listener("web-prod", "web-blue")
    url = f"http://127.0.0.1:{p.prod_port}/"
    # a new revision, as a rotation's restart or a rolling deploy registers one
    moved = p.compute.register_task_definition(
        replace(spec, environment=(*spec.environment, ("SECRET_VERSION_X", "2")))
    )
    with Load(url, workers=6, max_seconds=90, timeout_s=10) as load:
        wait_until(lambda: load.snapshot()[0] > 12, timeout_s=20, what="load flowing")
        p.compute.update_service("web-blue", task_definition=moved.ref)
        wait_until(lambda: in_service(moved.ref), timeout_s=60, what="both replicas replaced")
        sent = load.snapshot()[0]
        wait_until(lambda: load.snapshot()[0] > sent + 12, timeout_s=20, what="load after")
    result = load.result
    logs = "".join(f.read_text(errors="replace") for f in (p.paths.logs / "web-blue").glob("*.log"))
    finished = [int(n) for n in re.findall(r"stopped gracefully: (\d+) request", logs)]
    print(
        f"replica restart under load: {result.total} requests, {result.failed} failed; "
        f"requests in flight at each replica's SIGTERM, all answered: {finished}"
    )
    assert result.failed == 0, (result.by_status, result.errors[:5])
    assert "still running" not in logs
    # both old replicas stopped gracefully, and SIGTERM did find requests in flight
    assert len(finished) == 2 and sum(finished) > 0, logs[-2000:]
