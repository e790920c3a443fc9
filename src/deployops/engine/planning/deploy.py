"""Planning a deployment: the request, the live state, the strategy, the frozen settings.

:class:`DeployPlanner` reads ``deployops.yaml`` once, when the plan is made, and freezes every
setting the steps, the failure handling and the incident report will need into
``Plan.settings`` (see :func:`deployment_settings`). Nothing after this reads the live config.

>>> plan, live = planner.plan(DeployRequest(service="web", version="1.4.0"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from deployops.clock import Clock
from deployops.config.project import ProjectConfig, ServiceConfig
from deployops.config.rollback import RollbackSettings, effective_rollback
from deployops.domain.checklist import Stage
from deployops.domain.model import HealthCheck, ServiceState, TaskDefinitionSpec
from deployops.domain.names import colour_of, prod_listener, target_group
from deployops.domain.native import NativeParams, native_plan
from deployops.domain.plan import (
    BlueGreenParams,
    Plan,
    RollingParams,
    ShiftParams,
    blue_green_plan,
    rolling_plan,
    shift_plan,
)
from deployops.domain.version import Version
from deployops.engine.operation import Ports
from deployops.engine.planning.capabilities import require_capabilities
from deployops.errors import ConfigError
from deployops.ports import NativeDeployments
from deployops.ports.recovery import DatabaseEndpoints

__all__ = [
    "STRATEGIES",
    "AppEnvironment",
    "DeployPlanner",
    "DeployRequest",
    "LiveState",
    "deployment_settings",
    "frozen_rollback",
    "frozen_smoke_checks",
    "health_check_of",
    "native_deployments",
    "native_params",
    "native_strategy",
]

AppEnvironment = Callable[[ProjectConfig, str], tuple[dict[str, str], dict[str, str]]]


@dataclass(frozen=True, slots=True)
class DeployRequest:
    service: str
    version: str
    strategy: str | None = None  # None: the service's configured strategy
    force: bool = False
    owner: str = "deployops"
    reverts: str | None = None  # set when this deployment is a rollback of another
    kind: str = "deploy"


@dataclass(frozen=True, slots=True)
class LiveState:
    """What serves production now, read from the platform (not from our records)."""

    target_group: str
    colour: str
    service: ServiceState | None
    version: str
    task_definition: str

    @property
    def active(self) -> bool:
        return self.service is not None and self.service.desired > 0


def health_check_of(cfg: ServiceConfig) -> HealthCheck:
    h = cfg.health_check
    return HealthCheck(
        path=h.path,
        interval_s=h.interval,
        timeout_s=h.timeout,
        healthy_threshold=h.healthy_threshold,
        unhealthy_threshold=h.unhealthy_threshold,
    )


def deployment_settings(project: ProjectConfig, service: str) -> dict[str, Any]:
    """Every setting a deployment's steps and its failure handling read, frozen as JSON:
    the rollback rules with their windows (RB-1), the smoke checks the verification repeats,
    whether a failed colour is torn down, where incident reports go."""
    cfg = project.service(service)
    return {
        "rollback": effective_rollback(project, service).model_dump(mode="json"),
        "smoke_checks": [[c.path, c.status] for c in cfg.blue_green.smoke_checks],
        "teardown_on_failure": cfg.blue_green.teardown_on_failure,
        "health_path": cfg.health_check.path,
        "reports_dir": str(project.state_dir / "reports"),
        # CHK-2: the during-deploy checklist items with their limits and actions
        "checklist_during": [i.to_json() for i in project.checklist.items(Stage.DURING)]
        if project.checklist is not None and project.checklist.enabled
        else [],
    }


def _blue_green_params(
    request: DeployRequest, cfg: ServiceConfig, spec: TaskDefinitionSpec, live: LiveState
) -> BlueGreenParams:
    bg = cfg.blue_green
    return BlueGreenParams(
        service=request.service,
        spec=spec,
        health_check=health_check_of(cfg),
        desired_count=bg.desired_count or cfg.desired_count,
        active_colour=live.colour,
        has_active=live.active,
        health_timeout_s=bg.health_timeout,
        stability_window_s=bg.stability_window,
        sample_interval_s=bg.sample_interval,
        target_group_retention_s=bg.target_group_retention,
        smoke_checks=tuple((c.path, c.status) for c in bg.smoke_checks),
        max_error_rate=bg.max_error_rate,
    )


def _blue_green(
    request: DeployRequest, cfg: ServiceConfig, spec: TaskDefinitionSpec, live: LiveState
) -> Plan:
    return blue_green_plan(_blue_green_params(request, cfg, spec, live))


def _canary(
    request: DeployRequest, cfg: ServiceConfig, spec: TaskDefinitionSpec, live: LiveState
) -> Plan:
    """Production shifted to the new colour in the configured steps (``canary.steps``),
    each baked for ``canary.bake`` and judged against the previous colour."""
    return shift_plan(
        ShiftParams(
            blue_green=_blue_green_params(request, cfg, spec, live),
            strategy="canary",
            steps=cfg.canary.steps,
            bake_s=cfg.canary.bake,
        )
    )


def _linear(
    request: DeployRequest, cfg: ServiceConfig, spec: TaskDefinitionSpec, live: LiveState
) -> Plan:
    """Equal steps of ``linear.step_percent`` up to 100 %, each baked for ``linear.bake``."""
    return shift_plan(
        ShiftParams(
            blue_green=_blue_green_params(request, cfg, spec, live),
            strategy="linear",
            steps=cfg.linear.steps,
            bake_s=cfg.linear.bake,
        )
    )


def _rolling(
    request: DeployRequest, cfg: ServiceConfig, spec: TaskDefinitionSpec, live: LiveState
) -> Plan:
    bg = cfg.blue_green
    return rolling_plan(
        RollingParams(
            service=request.service,
            spec=spec,
            health_check=health_check_of(cfg),
            desired_count=cfg.desired_count,
            active_colour=live.colour,
            has_active=live.active,
            maximum_percent=cfg.rolling.maximum_percent,
            minimum_healthy_percent=cfg.rolling.minimum_healthy_percent,
            health_timeout_s=cfg.rolling.health_timeout,
            stability_window_s=bg.stability_window,
            sample_interval_s=bg.sample_interval,
            max_error_rate=bg.max_error_rate,
            smoke_checks=tuple((c.path, c.status) for c in bg.smoke_checks),
        )
    )


def native_params(
    service: str,
    cfg: ServiceConfig,
    spec: TaskDefinitionSpec,
    live: LiveState,
    *,
    strategy: str = "blue-green",
) -> NativeParams:
    """The platform's blue/green (``canary``, ``linear``) of ``service`` with the guide's
    windows (``aws.mode: ecs-native``): the stability window is its bake time; a canary's or
    a linear step's bake is the service's ``canary.bake`` / ``linear.bake``."""
    bg = cfg.blue_green
    shape: dict[str, Any] = {"strategy": "BLUE_GREEN"}
    if strategy == "canary":
        shape = {
            "strategy": "CANARY",
            "canary_percent": float(_native_canary_step(service, cfg)),
            "canary_bake_s": cfg.canary.bake,
        }
    elif strategy == "linear":
        step = cfg.linear.step_percent
        if step < NATIVE_LINEAR_MIN_STEP:
            raise ConfigError(
                f"linear steps of {step}% are too small for ECS's linear deployment, which "
                f"shifts at least {NATIVE_LINEAR_MIN_STEP:g}% per step",
                path=f"services.{service}.linear.step_percent",
                hint=f"set services.{service}.linear.step_percent to "
                f"{NATIVE_LINEAR_MIN_STEP:g} or more in deployops.yaml",
            )
        shape = {"strategy": "LINEAR", "step_percent": float(step), "step_bake_s": cfg.linear.bake}
    return NativeParams(
        service=service,
        spec=spec,
        active_colour=live.colour,
        health_timeout_s=bg.health_timeout,
        stability_window_s=bg.stability_window,
        sample_interval_s=bg.sample_interval,
        smoke_checks=tuple((c.path, c.status) for c in bg.smoke_checks),
        max_error_rate=bg.max_error_rate,
        poll_interval_s=max(1.0, min(15.0, cfg.health_check.interval)),
        **shape,
    )


# ECS's LinearConfiguration.stepPercent: multiples of 0.1 from 3.0 to 100.0.
NATIVE_LINEAR_MIN_STEP = 3.0


def _native_canary_step(service: str, cfg: ServiceConfig) -> int:
    """ECS's canary shifts one share of production, bakes, then moves the rest: the service's
    canary steps must be that one step and 100."""
    steps = cfg.canary.steps
    if len(steps) > 2:
        raise ConfigError(
            f"canary steps {list(steps)} have {len(steps) - 1} steps before 100%, but ECS's "
            "canary deployment shifts one canary step and then the rest",
            path=f"services.{service}.canary.steps",
            hint=f"set services.{service}.canary.steps: [{steps[0]}, 100] in deployops.yaml, "
            "or use strategy linear (equal steps), or aws.mode: services for several steps",
        )
    if len(steps) < 2:
        raise ConfigError(
            "canary steps [100] move all of production at once: there is no canary step",
            path=f"services.{service}.canary.steps",
            hint=f"set services.{service}.canary.steps: [5, 100] in deployops.yaml, or deploy "
            "with --strategy blue-green",
        )
    return steps[0]


def native_strategy(strategy: str) -> Strategy | None:
    """The plan of ``strategy`` when the platform carries deployments out itself
    (``aws.mode: ecs-native``): its BLUE_GREEN, CANARY or LINEAR; None for one it has not."""
    if strategy not in NATIVE_STRATEGIES:
        return None

    def build(
        request: DeployRequest, cfg: ServiceConfig, spec: TaskDefinitionSpec, live: LiveState
    ) -> Plan:
        return native_plan(native_params(request.service, cfg, spec, live, strategy=strategy))

    return build


NATIVE_STRATEGIES = ("blue-green", "canary", "linear")


def native_deployments(ports: Ports) -> NativeDeployments | None:
    """The platform's own blue/green, when it carries deployments out itself."""
    port = ports.extra.get(NativeDeployments)
    return port if isinstance(port, NativeDeployments) else None


# A strategy turns (request, service settings, task definition, live state) into a plan.
Strategy = Callable[[DeployRequest, ServiceConfig, TaskDefinitionSpec, LiveState], Plan]
STRATEGIES: dict[str, Strategy] = {
    "blue-green": _blue_green,
    "rolling": _rolling,
    "canary": _canary,
    "linear": _linear,
}


class DeployPlanner:
    """Validates deploy requests and plans them against what is live. Changes nothing."""

    def __init__(
        self,
        *,
        project: ProjectConfig,
        environment: str,
        ports: Ports,
        clock: Clock,
        app_environment: AppEnvironment | None = None,
    ) -> None:
        self.project = project
        self.environment = environment
        self.ports = ports
        self.clock = clock
        self._app_environment = app_environment

    def live_state(self, service: str) -> LiveState:
        listener = self.ports.traffic.describe_listener(prod_listener(service))
        tg = listener.target_group or target_group(service, "blue")
        svc = self.ports.compute.describe_service(tg)
        version = td = ""
        if svc is not None and svc.task_definition:
            td = svc.task_definition
            version = self.ports.compute.describe_task_definition(td).spec.version
        return LiveState(
            target_group=tg,
            colour=colour_of(tg) or "blue",
            service=svc,
            version=version,
            task_definition=td,
        )

    def plan(self, request: DeployRequest) -> tuple[Plan, LiveState]:
        """Validate the request and build its plan, settings frozen in. Changes nothing."""
        cfg = self.project.service(request.service)
        try:
            version = Version.parse(request.version)
        except ValueError as exc:
            raise ConfigError(
                str(exc), path="--version", hint="pass a semantic version such as 1.4.0"
            ) from None
        strategy = request.strategy or cfg.strategy
        build = STRATEGIES.get(strategy)
        if native_deployments(self.ports) is not None:
            build = native_strategy(strategy)
            if build is None:
                raise ConfigError(
                    f"strategy {strategy!r} cannot run in aws.mode ecs-native: ECS deploys the "
                    f"service with its own {', '.join(NATIVE_STRATEGIES)}",
                    path="--strategy",
                    hint=f"deploy with --strategy {' or '.join(NATIVE_STRATEGIES)}, or use "
                    "aws.mode: services for rolling updates",
                )
        if build is None:
            raise ConfigError(
                f"unknown strategy {strategy!r}",
                path="--strategy",
                hint=f"use {', '.join(STRATEGIES)}",
            )
        spec = self.task_definition_spec(request.service, cfg, str(version))
        live = self.live_state(request.service)
        if live.active and live.version == str(version) and not request.force:
            raise ConfigError(
                f"{request.service} {version} is already live in {self.environment} "
                f"({live.task_definition} on {live.target_group})",
                path="--version",
                hint="pass --force to deploy the same version again",
            )
        plan = build(request, cfg, spec, live)
        require_capabilities(plan, self.ports)
        return plan.with_settings(**deployment_settings(self.project, request.service)), live

    def database_endpoint(self, service: str) -> tuple[str, int] | None:
        """The database endpoint a restore recorded for ``service`` (environment state)."""
        endpoints = self.ports.extra.get(DatabaseEndpoints)
        if not isinstance(endpoints, DatabaseEndpoints):
            return None
        return endpoints.database_endpoint(service)

    def task_definition_spec(
        self, service: str, cfg: ServiceConfig, version: str
    ) -> TaskDefinitionSpec:
        env: dict[str, str] = {}
        secrets: dict[str, str] = {}
        if self._app_environment is not None:
            env, secrets = self._app_environment(self.project, self.environment)
        env.update(cfg.environment)
        env.update(cfg.version_environment.get(version, {}))
        moved = self.database_endpoint(service)
        if moved is not None:
            # DR-4: a restore or a failover repointed the application; the yaml still names
            # the database it replaced, so the recorded endpoint wins (the restore survives).
            env["DB_HOST"], env["DB_PORT"] = moved[0], str(moved[1])
        env["APP_VERSION"] = version
        image = cfg.image.replace("{version}", version) if cfg.image else ""
        container_port = int(env.get("PORT", "3000"))
        return TaskDefinitionSpec(
            family=cfg.task_family or service,
            version=version,
            port=container_port,
            command=tuple(cfg.command),
            image=image,
            environment=tuple(sorted(env.items())),
            secrets=tuple(sorted(secrets.items())),
            health_check=health_check_of(cfg),
            working_dir=str((self.project.root / cfg.working_dir).resolve()),
        )


# ---------------------------------------------------------------------- reading them back
def frozen_rollback(settings: Mapping[str, Any]) -> RollbackSettings:
    """The rollback settings frozen into a plan (the guide's defaults when it has none)."""
    raw = settings.get("rollback")
    return RollbackSettings.model_validate(raw) if raw else RollbackSettings()


def frozen_smoke_checks(settings: Mapping[str, Any]) -> tuple[tuple[str, int], ...]:
    """The smoke checks frozen into a plan (``/health`` -> 200 when it has none)."""
    raw = settings.get("smoke_checks") or [["/health", 200]]
    return tuple((str(path), int(status)) for path, status in raw)
