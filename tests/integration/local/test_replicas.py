"""Replicas under the supervisor, behind the real HAProxy (DR-3 level 1, DEP-1, DEP-3)."""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import replace

import httpx
import pytest

from deployops.clock import SystemClock
from deployops.domain.model import HealthCheck, ServiceState, TargetState, TaskState
from deployops.drivers.local import control
from deployops.store import StateStore
from tests.fixtures_local import FAST_HEALTH, LocalPlatformHandle

pytestmark = pytest.mark.integration


def _start(p: LocalPlatformHandle, version: str = "1.0.0", count: int = 2, **env: str) -> str:
    td = p.compute.register_task_definition(p.spec(version, **env))
    p.traffic.create_target_group("web-blue", health_check=FAST_HEALTH)
    p.compute.create_service(
        "web-blue", task_definition=td.ref, desired_count=count, target_group="web-blue"
    )
    return td.ref


def _service(p: LocalPlatformHandle, name: str = "web-blue") -> ServiceState:
    s = p.compute.describe_service(name)
    assert s is not None
    return s


def _healthy_targets(p: LocalPlatformHandle, tg: str = "web-blue") -> set[str]:
    group = p.traffic.describe_target_group(tg)
    assert group is not None
    return {t.target_id for t in group.targets if t.state is TargetState.HEALTHY}


def test_killed_replica_is_replaced_and_healthy_again(local_platform: LocalPlatformHandle) -> None:
    """DR-3 level 1: kill -9 a replica -> replaced, healthy and in the pool again within 10 s;
    the restart is an event in the state store."""
    p = local_platform
    _start(p)
    p.wait_until(lambda: len(_healthy_targets(p)) == 2, what="2 healthy targets")
    victim = next(t for t in _service(p).tasks if t.state is TaskState.RUNNING)
    os.kill(victim.pid, signal.SIGKILL)

    def recovered() -> bool:
        live = {t.task_id for t in _service(p).tasks if t.state is TaskState.RUNNING}
        return victim.task_id not in live and len(_healthy_targets(p) & live) == 2

    p.wait_until(recovered, timeout_s=10, what="replacement healthy in the pool")
    dead = next(t for t in _service(p).tasks if t.task_id == victim.task_id)
    assert dead.state is TaskState.STOPPED
    assert "killed by signal 9" in dead.last_error
    assert max(t.restarts for t in _service(p).tasks if t.state is TaskState.RUNNING) == 1
    assert p.get("/").status_code == 200

    store = StateStore.open(p.project.state_url())
    try:
        failed = store.events(kind="task.failed")
        restarted = store.events(kind="task.restarted")
    finally:
        store.close()
    assert any(victim.task_id in e.message and e.service == "web-blue" for e in failed)
    assert restarted and restarted[-1].level == "warning"


def test_replica_failing_health_leaves_pool_and_gets_no_traffic(
    local_platform: LocalPlatformHandle,
) -> None:
    """DEP-1: a replica whose /health fails leaves the pool; no request reaches it."""
    p = local_platform
    _start(p)
    p.wait_until(lambda: len(_healthy_targets(p)) == 2, what="2 healthy targets")
    sick = _service(p).tasks[0]
    assert httpx.get(f"http://127.0.0.1:{sick.port}/fault/health-fail").status_code == 200
    p.wait_until(lambda: sick.task_id not in _healthy_targets(p), what="sick replica out")
    answered_by = set()
    for _ in range(40):
        resp = p.get("/")
        assert resp.status_code == 200
        answered_by.add(resp.json()["replica"])
    assert sick.task_id not in answered_by
    assert answered_by  # the healthy replica carried the traffic


def test_unhealthy_replica_never_gets_traffic(local_platform: LocalPlatformHandle) -> None:
    """A health path that answers 404 keeps the replica out of the pool: it runs, gets nothing."""
    p = local_platform
    hc = HealthCheck(path="/no-such-health", interval_s=0.2, timeout_s=0.2)
    bad = p.compute.register_task_definition(replace(p.spec("1.0.0"), health_check=hc))
    p.compute.create_service(
        "web-blue", task_definition=bad.ref, desired_count=1, target_group="web-blue"
    )
    p.wait_until(lambda: _service(p).running == 1, what="replica running")
    SystemClock().sleep(1.5)  # long enough for several checks at 0.2 s
    for _ in range(10):
        assert p.get("/").status_code == 503  # no server in the backend
    state = _service(p)
    assert state.healthy == 0
    assert _healthy_targets(p) == set()


def test_crash_on_start_restarts_with_capped_backoff(local_platform: LocalPlatformHandle) -> None:
    """A command that exits at once: restarted with growing backoff, each restart an event,
    the reason (exit status and the log's last line) on the task."""
    p = local_platform
    _start(p, count=1, FAULT_CRASH_ON_START="1")

    def failures() -> list[float]:
        store = StateStore.open(p.project.state_url())
        try:
            return [float(e.data["backoff_s"]) for e in store.events(kind="task.failed")]
        finally:
            store.close()

    p.wait_until(lambda: len(failures()) >= 3, timeout_s=10, what="three failed starts")
    delays = failures()
    assert delays[:3] == [0.5, 1.0, 2.0]
    assert max(delays) <= 2.0  # restart_backoff_max in the test project
    stopped = [t for t in _service(p).tasks if t.state is TaskState.STOPPED]
    assert any("exited with status 3" in t.last_error for t in stopped)
    assert any("crashing on start" in t.last_error for t in stopped)
    assert _service(p).healthy == 0


def test_listener_switch_under_load_loses_no_request(local_platform: LocalPlatformHandle) -> None:
    """DEP-3: prod flips blue -> green with `set map` while a client sends requests; every
    request succeeds and the test listener keeps pointing at the other colour."""
    p = local_platform
    blue = p.compute.register_task_definition(p.spec("1.0.0"))
    green = p.compute.register_task_definition(p.spec("2.0.0"))
    for colour, td in (("web-blue", blue), ("web-green", green)):
        p.traffic.create_target_group(colour, health_check=FAST_HEALTH)
        p.compute.create_service(
            colour, task_definition=td.ref, desired_count=1, target_group=colour
        )
    for colour in ("web-blue", "web-green"):
        p.wait_until(lambda c=colour: len(_healthy_targets(p, c)) == 1, what=f"{colour} healthy")
    assert p.get("/", listener="test").json()["version"] == "2.0.0"

    results: list[tuple[int, str]] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=5.0) as client:
            for _ in range(5000):
                if stop.is_set():
                    return
                r = client.get(f"http://127.0.0.1:{p.prod_port}/")
                results.append((r.status_code, r.json().get("version", "")))

    worker = threading.Thread(target=load)
    worker.start()
    p.wait_until(lambda: len(results) > 50, what="load running")
    p.traffic.switch_listener("web-test", "web-blue")
    switched = p.traffic.switch_listener("web-prod", "web-green")
    count_at_switch = len(results)
    p.wait_until(lambda: len(results) > count_at_switch + 50, what="load after switch")
    stop.set()
    worker.join(timeout=10)

    assert switched.target_group == "web-green"
    assert all(status == 200 for status, _ in results), {s for s, _ in results}
    assert results[0][1] == "1.0.0" and results[-1][1] == "2.0.0"
    assert p.get("/", listener="test").json()["version"] == "1.0.0"
    # the map file is rewritten too, so a restart of HAProxy keeps the switch
    assert "prod web-green" in p.paths.map_file("web").read_text()


def test_haproxy_crash_is_recovered_with_switch_and_targets(
    local_platform: LocalPlatformHandle,
) -> None:
    """If HAProxy dies, the daemon restarts it from the rewritten map file and puts every
    registered replica back, so the last switch and the pool survive."""
    p = local_platform
    _start(p, count=1)
    p.traffic.switch_listener("web-test", "web-blue")
    p.wait_until(lambda: len(_healthy_targets(p)) == 1, what="healthy target")
    st = control.status(p.project, p.environment)
    for pid in [st["haproxy_pid"], *st["haproxy_workers"]]:
        os.kill(pid, signal.SIGKILL)

    def serving() -> bool:
        try:
            return p.get("/", listener="test").status_code == 200
        except httpx.HTTPError:
            return False

    p.wait_until(serving, timeout_s=15, what="HAProxy back with the replica")
    assert control.status(p.project, p.environment)["haproxy_pid"] != st["haproxy_pid"]
    assert p.traffic.describe_listener("web-test").target_group == "web-blue"


def _connections_to(port: int) -> int:
    """TCP connections (any state but LISTEN, TIME_WAIT included) with ``port`` at one end."""
    import psutil

    return sum(
        1
        for c in psutil.net_connections(kind="tcp")
        if c.status != psutil.CONN_LISTEN
        and ((c.laddr and c.laddr.port == port) or (c.raddr and c.raddr.port == port))
    )


def test_keep_alive_client_follows_every_switch(local_platform: LocalPlatformHandle) -> None:
    """DEP-3 with keep-alive on both sides of HAProxy: one client connection kept open across
    two `set map` switches; every request sent after a switch returned reaches the new colour,
    none fails, and HAProxy reuses its server connections instead of opening one per request."""
    import http.client
    import json

    p = local_platform
    blue = p.compute.register_task_definition(p.spec("1.0.0"))
    green = p.compute.register_task_definition(p.spec("2.0.0"))
    for colour, td in (("web-blue", blue), ("web-green", green)):
        p.traffic.create_target_group(colour, health_check=FAST_HEALTH)
        p.compute.create_service(
            colour, task_definition=td.ref, desired_count=1, target_group=colour
        )
    for colour in ("web-blue", "web-green"):
        p.wait_until(lambda c=colour: len(_healthy_targets(p, c)) == 1, what=f"{colour} healthy")
    tg = p.traffic.describe_target_group("web-blue")
    assert tg is not None
    blue_port = int(tg.targets[0].address.rsplit(":", 1)[1])

    conn = http.client.HTTPConnection("127.0.0.1", p.prod_port, timeout=5.0)
    local_ports: set[int] = set()

    def ask(n: int) -> list[str]:
        versions = []
        for _ in range(n):
            conn.request("GET", "/")
            r = conn.getresponse()
            body = r.read()
            assert r.status == 200, (r.status, body)
            assert r.getheader("Connection", "").lower() != "close"
            assert conn.sock is not None
            local_ports.add(conn.sock.getsockname()[1])
            versions.append(json.loads(body)["version"])
        return versions

    try:
        before_conns = _connections_to(blue_port)
        assert set(ask(300)) == {"1.0.0"}
        # 300 requests on one client connection: a handful of server connections (health
        # checks open their own), not one per request as with a server-side close.
        assert _connections_to(blue_port) - before_conns < 60
        p.traffic.switch_listener("web-prod", "web-green")
        assert set(ask(200)) == {"2.0.0"}, "a request after the switch reached the old colour"
        p.traffic.switch_listener("web-prod", "web-blue")
        assert set(ask(200)) == {"1.0.0"}, "a request after the switch back reached green"
    finally:
        conn.close()
    assert len(local_ports) == 1, "the client connection was not kept alive"
