"""``deployops local up|down|status`` and the platform's bad inputs, end to end."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from deployops.clock import SystemClock
from deployops.config.project import ProjectConfig, load_project
from deployops.domain.model import TaskDefinitionSpec
from deployops.drivers.local import build, control
from deployops.drivers.local.haproxy import HaproxyProcess
from deployops.drivers.local.paths import LocalPaths
from deployops.errors import ConfigError, PlatformUnavailableError
from deployops.store import StateStore
from tests.fixtures_local import ENV, LocalPlatformHandle, write_project

pytestmark = pytest.mark.integration


def _cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployops", "-c", str(project), "-e", ENV, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def project_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="dops-"))
    yield root
    control.down(load_project(root / "deployops.yaml"), ENV, clock=SystemClock())
    shutil.rmtree(root, ignore_errors=True)


def test_up_twice_status_and_down_leave_no_process(project_dir: Path) -> None:
    """`up` twice is harmless; `status -o json` names every pid; `down` leaves none of them."""
    path = write_project(project_dir)
    first = _cli(path, "local", "up")
    assert first.returncode == 0, first.stderr
    assert "web-prod" in first.stdout and "web-blue" in first.stdout
    second = _cli(path, "local", "up")
    assert second.returncode == 0 and "already running" in second.stdout

    project = load_project(path)
    paths = LocalPaths.of(project, ENV)
    handle = LocalPlatformHandle(project, ENV, paths, *_drivers(project))
    td = handle.compute.register_task_definition(handle.spec("1.0.0"))
    handle.compute.create_service(
        "web-blue", task_definition=td.ref, desired_count=2, target_group="web-blue"
    )
    handle.wait_until(lambda: bool((s := handle.compute.describe_service("web-blue")) and s.steady))
    handle.wait_until(
        lambda: (
            (tg := handle.traffic.describe_target_group("web-blue")) is not None
            and tg.healthy_count == 2
        ),
        what="HAProxy's own checks passed",
    )
    assert handle.get("/").status_code == 200

    status = _cli(path, "-o", "json", "local", "status")
    assert status.returncode == 0, status.stderr
    st = json.loads(status.stdout)
    assert st["running"] and st["haproxy_running"]
    assert {li["name"]: li["forwards"][0][0] for li in st["listeners"]} == {
        "web-prod": "web-blue",
        "web-test": "web-green",
    }
    (svc,) = st["services"]
    assert (svc["desired"], svc["running"], svc["healthy"]) == (2, 2, 2)
    pids = [st["daemon_pid"], st["haproxy_pid"], *st["haproxy_workers"], *st["replica_pids"]]
    assert len(pids) >= 5

    down = _cli(path, "local", "down")
    assert down.returncode == 0, down.stderr
    assert "stopped" in down.stdout
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert alive == []
    assert not paths.daemon_json.exists()
    assert "not running" in _cli(path, "local", "status").stdout
    assert "was not running" in _cli(path, "local", "down").stdout


def _drivers(project: ProjectConfig) -> tuple[object, object]:
    store = StateStore.open(project.state_url())
    platform = build(project, ENV, clock=SystemClock(), store=store)
    return platform.compute, platform.traffic


def test_daemon_not_running_names_the_fix(project_dir: Path) -> None:
    project = load_project(write_project(project_dir))
    compute, _ = _drivers(project)
    with pytest.raises(PlatformUnavailableError, match="not running") as err:
        compute.list_services()  # type: ignore[attr-defined]
    assert err.value.hint == f"deployops local up -e {ENV}"
    assert err.value.exit_code == 2


def test_port_taken_is_refused_and_nothing_is_left(project_dir: Path) -> None:
    """A listener port in use: a message naming the port and the fix; no daemon, no HAProxy."""
    path = write_project(project_dir)
    project = load_project(path)
    port = project.services["web"].port
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        result = _cli(path, "local", "up")
    assert result.returncode == 2
    assert f"port {port} is in use" in result.stderr
    assert f"by pid {os.getpid()}" in result.stderr
    assert "fix:" in result.stderr
    paths = LocalPaths.of(project, ENV)
    assert not paths.daemon_json.exists()
    cfg = str(paths.haproxy_cfg)
    assert not [p for p in psutil.process_iter(["cmdline"]) if cfg in (p.info["cmdline"] or [])]


def test_missing_command_is_refused_with_the_fix(local_platform: LocalPlatformHandle) -> None:
    p = local_platform
    td = p.compute.register_task_definition(
        TaskDefinitionSpec(family="web", version="1.0.0", port=0, command=("no-such-program",))
    )
    with pytest.raises(ConfigError, match=r"no-such-program.*not found on PATH") as err:
        p.compute.create_service(
            "web-blue", task_definition=td.ref, desired_count=1, target_group="web-blue"
        )
    assert err.value.hint and "command" in err.value.hint
    assert p.compute.describe_service("web-blue") is None


def test_unknown_target_group_lists_the_valid_ones(local_platform: LocalPlatformHandle) -> None:
    p = local_platform
    with pytest.raises(ConfigError, match="web-blue, web-green"):
        p.traffic.describe_target_group("web-purple")


def test_haproxy_missing_names_the_package() -> None:
    with pytest.raises(ConfigError, match="not installed") as err:
        HaproxyProcess.find_binary("haproxy-not-installed")
    assert err.value.hint and "apt-get install haproxy" in err.value.hint
