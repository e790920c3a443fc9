"""Drivers: one package per platform, looked up by name and imported lazily.

``build_platform(project, environment, clock=..., store=...)`` returns the
:class:`Platform` bundle of ports for an environment of ``deployops.yaml``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deployops.errors import ConfigError, UnsupportedError

if TYPE_CHECKING:
    from deployops.clock import Clock
    from deployops.config.project import ProjectConfig
    from deployops.ports import Compute, Metrics, Prober, Traffic
    from deployops.store import StateStore

__all__ = ["PLATFORMS", "Platform", "build_platform"]

# platform name -> module with ``build(project, environment, *, clock, store) -> Platform``
PLATFORMS = {"local": "deployops.drivers.local", "aws": "deployops.drivers.aws"}


@dataclass
class Platform:
    """The ports of one environment. ``extras`` holds optional ports (scaler, database...)."""

    name: str
    environment: str
    compute: Compute
    traffic: Traffic
    metrics: Metrics
    prober: Prober = field(default_factory=lambda: _http_prober())
    extras: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        ports = (self.compute, self.traffic, self.metrics, self.prober, *self.extras.values())
        for port in ports:
            closer = getattr(port, "close", None)
            if callable(closer):
                closer()


def _http_prober() -> Prober:
    from deployops.drivers.http import HttpProber

    return HttpProber()


def build_platform(
    project: ProjectConfig, environment: str, *, clock: Clock, store: StateStore
) -> Platform:
    env = project.environment(environment)
    module_name = PLATFORMS.get(env.platform)
    if module_name is None:
        raise ConfigError(
            f"unknown platform {env.platform!r}; valid: {', '.join(PLATFORMS)}",
            path=f"environments.{environment}.platform",
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == "boto3":
            raise UnsupportedError(
                "the aws platform needs boto3",
                path=f"environments.{environment}.platform",
                hint="pip install 'deployops[aws]'",
            ) from None
        raise UnsupportedError(
            f"platform {env.platform!r} has no drivers in this installation",
            path=f"environments.{environment}.platform",
            hint=f"use platform: local, or install a release that ships the {env.platform} drivers",
        ) from None
    build = getattr(module, "build", None)
    if build is None:
        raise UnsupportedError(
            f"platform {env.platform!r} has no drivers in this installation",
            path=f"environments.{environment}.platform",
            hint=f"use platform: local, or install a release that ships the {env.platform} drivers",
        )
    platform: Platform = build(project, environment, clock=clock, store=store)
    return platform
