"""Deployments through the CLI on the real local platform (HAProxy 2.6, supervised replicas,
metrics from HAProxy's logs), on the real clock with short configured waits."""

from __future__ import annotations

import json
import threading
import time

import pytest

from deployops.drivers.local.client import DaemonClient
from deployops.drivers.local.compute import LocalCompute
from deployops.drivers.local.load import Load
from deployops.drivers.local.paths import LocalPaths
from tests.e2e.conftest import Project, running_project
from tests.fixtures_local import ENV

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def prod_url(p: Project, path: str = "/") -> str:
    return f"http://127.0.0.1:{p.config.services['web'].port}{path}"


def test_blue_green_under_load_loses_no_request_dep1_dep2_dep3_dep4(project: Project) -> None:
    first = project.cli("deploy", "--version", "1.0.0")
    assert first.returncode == 0, first.stderr
    with Load(prod_url(project), workers=3, max_seconds=60) as load:
        time.sleep(0.5)
        second = project.cli("deploy", "--version", "1.1.0")
        time.sleep(0.5)
    assert second.returncode == 0, second.stderr
    res = load.result
    assert res.failed == 0, (res.by_status, res.errors)
    assert res.by_version.get("1.0.0", 0) > 0
    assert res.by_version.get("1.1.0", 0) > 0
    assert project.prod_target_group() == "web-green"  # DEP-3
    assert project.service("web-blue")["desired"] == 0  # DEP-4
    assert project.service("web-green")["healthy"] == 2
    (latest, *_) = project.deployments()
    assert latest["status"] == "succeeded"
    assert latest["previous_version"] == "1.0.0"
    show = json.loads(project.cli("-o", "json", "deployments", "show", latest["id"]).stdout)
    phases = [s["phase"] for s in show["steps"]]
    assert phases[0] == "prepare"  # DEP-1
    assert phases[-1] == "cleanup"  # DEP-4: the deployment log has every phase
    assert all(s["finished_at"] for s in show["steps"])


def test_green_never_healthy_stops_in_phase_2_traffic_stays_on_blue_dep2_dep7(
    project: Project,
) -> None:
    assert project.cli("deploy", "--version", "1.0.0").returncode == 0
    with Load(prod_url(project), workers=2, max_seconds=60) as load:
        out = project.cli("deploy", "--version", "6.6.6")
    assert out.returncode == 1, out.stderr
    assert "did not turn healthy" in out.stderr
    assert "fix:" in out.stderr
    assert project.prod_target_group() == "web-blue"
    assert load.result.failed == 0
    assert set(load.result.by_version) == {"1.0.0"}
    assert project.service("web-green")["desired"] == 0  # torn down


def test_a_crash_looping_version_fails_fast_without_waiting_out_the_timeout_dep7(
    project: Project,
) -> None:
    assert project.cli("deploy", "--version", "1.0.0").returncode == 0
    began = time.monotonic()
    out = project.cli("deploy", "--version", "7.0.0")
    took = time.monotonic() - began
    assert out.returncode == 1, out.stderr
    assert "crash-looping" in out.stderr
    assert "exited with status 3" in out.stderr  # the replica's own exit, named
    assert took < 15  # the health timeout is 20 s
    assert project.prod_target_group() == "web-blue"


def test_smoke_check_failing_on_test_listener_stops_before_switch_dep7(
    project: Project,
) -> None:
    assert project.cli("deploy", "--version", "1.0.0").returncode == 0
    with Load(prod_url(project), workers=2, max_seconds=60) as load:
        out = project.cli("deploy", "--version", "5.0.0")
    assert out.returncode == 1, out.stderr
    assert "smoke check" in out.stderr
    assert project.prod_target_group() == "web-blue"
    assert load.result.failed == 0  # users never saw the broken version


def test_rolling_update_never_drops_below_desired_healthy_iac4() -> None:
    with running_project(strategy="rolling", desired_count=3) as project:
        assert project.cli("deploy", "--version", "1.0.0").returncode == 0
        paths = LocalPaths.of(project.config, ENV)
        compute = LocalCompute(client=DaemonClient(paths, ENV), clock=None)  # type: ignore[arg-type]
        seen: list[int] = []
        running: list[int] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                st = compute.describe_service("web-blue")
                if st is not None:
                    seen.append(st.healthy)
                    running.append(st.running)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            with Load(prod_url(project), workers=2, max_seconds=60) as load:
                out = project.cli("deploy", "--version", "1.1.0")
        finally:
            stop.set()
            sampler.join()
            compute.close()
        assert out.returncode == 0, out.stderr
        assert len(seen) > 10
        assert min(seen) >= 3, seen  # minimum_healthy_percent = 100
        assert max(running) <= 6  # maximum_percent = 200
        assert load.result.failed == 0
        assert project.service("web-blue")["task_definition"].endswith(":2")


def test_second_concurrent_deploy_gets_exit_4_with_the_holder(project: Project) -> None:
    assert project.cli("deploy", "--version", "1.0.0").returncode == 0
    first = project.popen("deploy", "--version", "1.1.0")
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            locks = json.loads(project.cli("-o", "json", "lock", "list").stdout)
            if locks:
                break
            time.sleep(0.1)
        assert locks, "the first deploy never took the lock"
        second = project.cli("deploy", "--version", "1.2.0")
        assert second.returncode == 4, second.stderr
        assert "held by" in second.stderr
        assert "1.1.0" in second.stderr  # the reason names what the holder is doing
    finally:
        first.wait(timeout=60)
    assert first.returncode == 0
    assert project.prod_target_group() == "web-green"
