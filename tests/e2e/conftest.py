"""The CLI against a real local platform (HAProxy, replicas, metrics), on the real clock with
short configured durations."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from deployops.clock import SystemClock
from deployops.config.project import ProjectConfig, load_project
from deployops.drivers.local import control
from tests.fixtures_local import ENV, FAST_RULES, write_project

DEPLOYOPS = str(Path(sys.executable).parent / "deployops")

FAULTS = {
    "6.6.6": {"FAULT_HEALTH_FAIL": "1"},  # never healthy
    "5.0.0": {"FAULT_ERROR_RATE": "1.0"},  # every request fails
    "2.0.0": {"FAULT_ERROR_RATE": "0.2"},  # 20 % of requests fail
    "3.0.0": {"FAULT_LATENCY_MS": "1500"},  # P99 about 1.5 s
    "4.0.0": {"FAULT_LEAK_MB_PER_S": "100"},
    "7.0.0": {
        "FAULT_CRASH_ON_START": "1"
    },  # exits at once, every time  # leaks memory until scaled out, then rolled back
}


@dataclass
class Project:
    config: ProjectConfig

    @property
    def path(self) -> Path:
        return self.config.path

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DEPLOYOPS, "-c", str(self.path), "-e", ENV, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [DEPLOYOPS, "-c", str(self.path), "-e", ENV, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def status(self) -> dict[str, Any]:
        return control.status(self.config, ENV)

    def prod_target_group(self) -> str:
        listeners = {lst["name"]: lst for lst in self.status()["listeners"]}
        return str(listeners["web-prod"]["forwards"][0][0])

    def service(self, name: str) -> dict[str, Any]:
        (svc,) = [s for s in self.status()["services"] if s["name"] == name]
        return svc  # type: ignore[no-any-return]

    def deployments(self) -> list[dict[str, Any]]:
        out = self.cli("-o", "json", "deployments", "list", "-n", "50")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    def orphans(self) -> list[int]:
        """Replica processes of the daemon that its supervisor does not know about."""
        st = self.status()
        known = {t["pid"] for s in st["services"] for t in s["tasks"] if t["state"] != "STOPPED"}
        daemon = psutil.Process(st["daemon_pid"])
        haproxy = {st["haproxy_pid"], *st["haproxy_workers"]}
        return [
            p.pid
            for p in daemon.children()
            if p.pid not in known
            and p.pid not in haproxy
            and p.is_running()
            and p.status() != psutil.STATUS_ZOMBIE
        ]


@contextmanager
def running_project(
    *, top: dict[str, Any] | None = None, before_up: Any = None, **overrides: Any
) -> Iterator[Project]:
    """A temp project with the sample service and its fault versions, platform up. ``top``
    adds project-level sections (e.g. ``state``); ``before_up(root)`` runs before the platform
    starts (e.g. to mount a file system on the state directory)."""
    root = Path(tempfile.mkdtemp(prefix="dops-e2e-"))
    settings: dict[str, Any] = {
        "version_environment": FAULTS,
        "blue_green": {
            "health_timeout": 20,
            "stability_window": 4,
            "sample_interval": 0.5,
            "smoke_checks": [{"path": "/health", "status": 200}, {"path": "/", "status": 200}],
        },
        "rollback": FAST_RULES,
    }
    settings.update(overrides)
    path = write_project(root, **settings)
    if top:
        import yaml

        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        doc.update(top)
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    if before_up is not None:
        before_up(root)
    config = load_project(path)
    clock = SystemClock()
    control.up(config, ENV, clock=clock)
    try:
        yield Project(config)
    finally:
        report = control.down(config, ENV, clock=clock)
        shutil.rmtree(root, ignore_errors=True)
        assert report["killed_leftovers"] == [], report


@pytest.fixture
def project() -> Iterator[Project]:
    with running_project() as p:
        yield p
