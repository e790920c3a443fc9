"""The contract suites run against every driver; each driver is one ``platform_under_test``.

A handle gives the ports (``compute``, ``traffic``, ``metrics``, ``prober``), ``spec(version,
**env)``, ``wait_until`` (on the platform's own clock: real for ``local``, virtual for
``memory``) and ``url(path, listener)``. Names follow the blue/green convention of
``deployops.domain.names``: target groups ``web-blue``/``web-green``, listeners
``web-prod``/``web-test``, compute services ``web-blue``/``web-green``.

The in-memory driver is the reference the engine's unit tests rely on; the contract keeps it
honest against the local one. The AWS drivers join with a handle of the same shape.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from deployops.clock import Clock, SystemClock, VirtualClock
from deployops.domain.model import TaskDefinitionSpec
from deployops.domain.names import prod_listener, test_listener
from deployops.ports import Compute, Metrics, Prober, Traffic
from deployops.store import StateStore
from tests.fixtures_local import (
    FAST_HEALTH,
    SAMPLE_SERVICE,
    LocalPlatformHandle,
    local_platform,
    local_project,
)

__all__ = ["ContractPlatform", "local_platform", "local_project", "platform_under_test"]

DRIVERS = ["memory", "local"]


@dataclass
class ContractPlatform:
    """One platform's drivers as the contract suites see them."""

    name: str
    compute: Compute
    traffic: Traffic
    metrics: Metrics
    prober: Prober
    clock: Clock
    ports: dict[str, int] = field(default_factory=dict)  # listener -> port
    close: Callable[[], None] = lambda: None

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

    def url(self, path: str = "/", *, listener: str = "prod") -> str:
        name = prod_listener("web") if listener == "prod" else test_listener("web")
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    def wait_until(
        self, check: Callable[[], bool], *, timeout_s: float = 15.0, what: str = "condition"
    ) -> None:
        deadline = self.clock.monotonic() + timeout_s
        while self.clock.monotonic() < deadline:
            if check():
                return
            self.clock.sleep(0.05)
        raise AssertionError(f"{what} not reached within {timeout_s:g}s")


def _memory() -> ContractPlatform:
    from deployops.drivers.memory import (
        MemoryCloud,
        MemoryCompute,
        MemoryMetrics,
        MemoryProber,
        MemoryTraffic,
    )

    clock = VirtualClock()
    cloud = MemoryCloud(clock=clock, start_delay_s=0.5)
    cloud.add_service_listeners("web", 18080)
    return ContractPlatform(
        name="memory",
        compute=MemoryCompute(cloud=cloud),
        traffic=MemoryTraffic(cloud=cloud),
        metrics=MemoryMetrics(cloud=cloud),
        prober=MemoryProber(cloud=cloud),
        clock=clock,
        ports={"web-prod": 18080, "web-test": 18081},
    )


def _local(handle: LocalPlatformHandle) -> ContractPlatform:
    from deployops.drivers.http import HttpProber
    from deployops.drivers.local.metrics import LocalMetrics

    clock = SystemClock()
    store = StateStore.open(handle.project.state_url())
    return ContractPlatform(
        name="local",
        compute=handle.compute,
        traffic=handle.traffic,
        metrics=LocalMetrics(store=store, clock=clock),
        prober=HttpProber(),
        clock=clock,
        ports={"web-prod": handle.prod_port, "web-test": handle.test_port},
        close=store.close,
    )


@pytest.fixture(params=DRIVERS)
def platform_under_test(request: pytest.FixtureRequest) -> Iterator[Any]:
    """One per driver. A new driver adds its name to ``DRIVERS`` and a branch here."""
    if request.param == "memory":
        platform = _memory()
    elif request.param == "local":
        platform = _local(request.getfixturevalue("local_platform"))
    else:  # pragma: no cover - a new driver must add its branch here
        raise AssertionError(f"no fixture for driver {request.param}")
    try:
        yield platform
    finally:
        platform.close()
