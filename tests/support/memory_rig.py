"""An engine wired to the in-memory reference platform on a virtual clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deployops.clock import VirtualClock
from deployops.config.project import ProjectConfig, load_project
from deployops.drivers.memory import (
    MemoryCloud,
    MemoryCompute,
    MemoryMetrics,
    MemoryProber,
    MemoryTraffic,
)
from deployops.engine.deploy import Deployer
from deployops.engine.events import Notice
from deployops.store import EventRecord, StateStore


def write_project(root: Path, **service_overrides: Any) -> ProjectConfig:
    service: dict[str, Any] = {
        "port": 18080,
        "command": ["python3", "app.py"],
        "desired_count": 4,
        "version_environment": {
            "1.1.0": {},
            "6.6.6": {"FAULT_HEALTH_FAIL": "1"},
            "5.0.0": {"FAULT_ERROR_RATE": "1.0"},
            "2.0.0": {"FAULT_ERROR_RATE": "0.2"},
        },
    }
    service.update(service_overrides)
    doc = {
        "project": "shop",
        "environments": {"staging": {"platform": "local"}},
        "services": {"web": service},
    }
    path = root / "deployops.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_project(path)


@dataclass
class Rig:
    project: ProjectConfig
    clock: VirtualClock
    cloud: MemoryCloud
    store: StateStore
    traffic: MemoryTraffic
    metrics: MemoryMetrics
    events: list[EventRecord] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)

    def deployer(self, *, extra_ports: dict[type[Any], object] | None = None) -> Deployer:
        return Deployer(
            project=self.project,
            environment="staging",
            compute=MemoryCompute(cloud=self.cloud),
            traffic=self.traffic,
            metrics=self.metrics,
            prober=MemoryProber(cloud=self.cloud),
            store=self.store,
            clock=self.clock,
            reporter=self.events.append,
            notify=self.notices.append,
            extra_ports=extra_ports,
        )

    def prod(self) -> str:
        return self.traffic.describe_listener("web-prod").target_group


def make_rig(tmp_path: Path) -> Rig:
    clock = VirtualClock()
    cloud = MemoryCloud(clock=clock)
    cloud.add_service_listeners("web", 18080)
    project = write_project(tmp_path)
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    return Rig(
        project=project,
        clock=clock,
        cloud=cloud,
        store=store,
        traffic=MemoryTraffic(cloud=cloud),
        metrics=MemoryMetrics(cloud=cloud),
    )
