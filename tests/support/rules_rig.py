"""The in-memory rig with the engine judging by the RB-1 rollback rules (RulesObserver)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deployops.clock import VirtualClock
from deployops.drivers.memory import (
    MemoryCloud,
    MemoryCompute,
    MemoryMetrics,
    MemoryProber,
    MemoryTraffic,
)
from deployops.engine.deploy import Deployer, DeployRequest
from deployops.engine.observe.rules_observer import RulesObserver
from deployops.engine.planning.deploy import frozen_rollback
from deployops.store import DeploymentRecord, StateStore
from tests.support.memory_rig import Rig, write_project

VERSIONS: dict[str, dict[str, str]] = {
    "1.0.0": {},
    "1.1.0": {},
    "2.0.0": {"FAULT_ERROR_RATE": "0.2"},  # 20 % of requests fail
    "3.0.0": {"FAULT_LATENCY_MS": "1500"},  # P99 ~ 1.5 s
    "4.0.0": {"FAULT_LEAK_MB_PER_S": "2"},  # memory leak
    "5.0.0": {"FAULT_CPU": "95"},  # CPU hog
    # 20 % of requests fail from 7 minutes after start: 2 minutes after a 5-minute window
    "1.3.0": {"FAULT_ERROR_RATE": "0.2", "FAULT_DEGRADE_AFTER_S": "420"},
}


def make_rules_rig(tmp_path: Path, **service_overrides: Any) -> Rig:
    clock = VirtualClock()
    cloud = MemoryCloud(clock=clock)
    cloud.add_service_listeners("web", 18080)
    overrides: dict[str, Any] = {"version_environment": VERSIONS}
    overrides.update(service_overrides)
    project = write_project(tmp_path, **overrides)
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    return Rig(
        project=project,
        clock=clock,
        cloud=cloud,
        store=store,
        traffic=MemoryTraffic(cloud=cloud),
        metrics=MemoryMetrics(cloud=cloud),
    )


def rules_deployer(rig: Rig) -> Deployer:
    """A deployer as ``wiring.build_deployer`` makes it: one RulesObserver per deployment."""
    compute = MemoryCompute(cloud=rig.cloud)

    def observer(service: str, settings: Mapping[str, Any]) -> RulesObserver:
        _ = service
        return RulesObserver.from_settings(
            compute=compute, metrics=rig.metrics, settings=frozen_rollback(settings)
        )

    return Deployer(
        project=rig.project,
        environment="staging",
        compute=compute,
        traffic=rig.traffic,
        metrics=rig.metrics,
        prober=MemoryProber(cloud=rig.cloud),
        store=rig.store,
        clock=rig.clock,
        reporter=rig.events.append,
        notify=rig.notices.append,
        observer=observer,
    )


def deploy(rig: Rig, version: str) -> DeploymentRecord:
    return rules_deployer(rig).deploy(DeployRequest(service="web", version=version))


def switched_at(rig: Rig, deployment_id: str) -> float:
    """Virtual seconds since the clock's start at which production switched to green."""
    step = next(
        s
        for s in rig.store.steps_for(deployment_id)
        if s.name == "SwitchListener" and s.status == "succeeded"
    )
    assert step.finished_at is not None
    return (step.finished_at - VirtualClock().now()).total_seconds()
