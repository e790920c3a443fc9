"""The embedded ``local`` platform: replicas as processes behind HAProxy, run by a daemon.

``build(project, environment, clock=..., store=...)`` returns the :class:`Platform` whose
drivers talk to the daemon that ``deployops local up`` started. If it is not running, every
call raises ``PlatformUnavailableError`` with the fix (``deployops local up -e ENV``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deployops.drivers import Platform
from deployops.drivers.local.client import DaemonClient
from deployops.drivers.local.compute import LocalCompute
from deployops.drivers.local.paths import LocalPaths
from deployops.drivers.local.traffic import HaproxyTraffic

if TYPE_CHECKING:
    from deployops.clock import Clock
    from deployops.config.project import ProjectConfig
    from deployops.store import StateStore

__all__ = ["HaproxyTraffic", "LocalCompute", "build"]


def build(project: ProjectConfig, environment: str, *, clock: Clock, store: StateStore) -> Platform:
    from deployops.drivers.local.metrics import LocalMetrics  # written alongside; lazy

    paths = LocalPaths.of(project, environment)
    return Platform(
        name="local",
        environment=environment,
        compute=LocalCompute(client=DaemonClient(paths, environment), clock=clock),
        traffic=HaproxyTraffic(client=DaemonClient(paths, environment), clock=clock),
        metrics=LocalMetrics(store=store, clock=clock),
    )
