"""A running local platform for tests: a temp project with the sample service, a daemon.

Import the fixtures into a ``conftest.py``::

    from tests.fixtures_local import local_platform, local_project  # noqa: F401

``local_platform`` starts the daemon (``deployops local up``) for one test and stops it after,
checking that no process is left. Health checks run every 0.2 s so tests are quick.
"""

from __future__ import annotations

import random
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from deployops.clock import SystemClock
from deployops.config.project import ProjectConfig, load_project
from deployops.domain.model import HealthCheck, TaskDefinitionSpec
from deployops.drivers.local import control
from deployops.drivers.local.client import DaemonClient
from deployops.drivers.local.compute import LocalCompute
from deployops.drivers.local.paths import LocalPaths
from deployops.drivers.local.traffic import HaproxyTraffic

__all__ = [
    "FAST_RULES",
    "LocalPlatformHandle",
    "free_port",
    "local_platform",
    "local_project",
    "write_project",
]

SAMPLE_SERVICE = Path(__file__).resolve().parents[1] / "examples" / "sample-service"
ENV = "development"
FAST_HEALTH = HealthCheck(
    path="/health", interval_s=0.2, timeout_s=0.2, healthy_threshold=2, unhealthy_threshold=2
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The guide's RB-1 rules with their windows shortened like the other waits (1 s periods).
FAST_RULES = {
    "period": "1s",
    "min_requests": 3,
    "rules": {
        "error-rate": {"window": "3s"},
        # 1.5 s requests complete in bursts: 2 s periods each hold some of them
        "p99-latency": {"period": "2s", "window": "6s", "escalate_after": "10s"},
        "memory": {"window": "2s", "scale_out_grace": "4s"},
        "cpu": {"window": "5s"},
        "health-check-failures": {"window": "2s"},
    },
}


def write_project(root: Path, **service_overrides: Any) -> Path:
    """A deployops.yaml for the sample service on free ports; returns its path."""
    start = random.randrange(30000, 59000)
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
        "blue_green": {"health_timeout": 20, "stability_window": 2, "sample_interval": 1},
        # judged on 1 s periods like the other shortened waits (the guide's 60 s periods could
        # never be judged inside a 2 s window: every deploy would wait for synthetic requests)
        "rollback": FAST_RULES,
    }
    service.update(service_overrides)
    doc = {
        "project": "demo",
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
class LocalPlatformHandle:
    """A started local platform and its drivers."""

    project: ProjectConfig
    environment: str
    paths: LocalPaths
    compute: LocalCompute
    traffic: HaproxyTraffic

    @property
    def prod_port(self) -> int:
        return self.project.services["web"].port

    @property
    def test_port(self) -> int:
        return self.project.services["web"].listener_test_port

    def spec(self, version: str = "1.0.0", **env: str) -> TaskDefinitionSpec:
        """The sample service at ``version`` with extra environment (fault switches)."""
        return TaskDefinitionSpec(
            family="web",
            version=version,
            port=0,
            command=("python", "app.py"),
            working_dir=str(SAMPLE_SERVICE),
            environment=(("APP_VERSION", version), *sorted(env.items())),
            health_check=FAST_HEALTH,
        )

    def get(self, path: str = "/", *, listener: str = "prod") -> httpx.Response:
        port = self.prod_port if listener == "prod" else self.test_port
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5.0)

    @staticmethod
    def wait_until(
        check: Callable[[], bool], *, timeout_s: float = 15.0, what: str = "condition"
    ) -> None:
        clock = SystemClock()
        deadline = clock.monotonic() + timeout_s
        while clock.monotonic() < deadline:
            if check():
                return
            clock.sleep(0.05)
        raise AssertionError(f"{what} not reached within {timeout_s:g}s")


@pytest.fixture
def local_project() -> Iterator[ProjectConfig]:
    """A temp project (short path: HAProxy's sockets live in it) with the sample service."""
    root = Path(tempfile.mkdtemp(prefix="dops-"))
    try:
        yield load_project(write_project(root))
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def local_platform(local_project: ProjectConfig) -> Iterator[LocalPlatformHandle]:
    """``deployops local up`` for one test; ``down`` afterwards must leave no process."""
    clock = SystemClock()
    control.up(local_project, ENV, clock=clock)
    paths = LocalPaths.of(local_project, ENV)
    handle = LocalPlatformHandle(
        project=local_project,
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
        report = control.down(local_project, ENV, clock=clock)
        assert report["killed_leftovers"] == [], report
