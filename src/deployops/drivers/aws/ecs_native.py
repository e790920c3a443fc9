"""``aws.mode: ecs-native``: ECS's own blue/green, watched and judged by deployops.

One ECS service with ``deploymentConfiguration.strategy`` ``BLUE_GREEN`` (``CANARY`` and
``LINEAR`` take the same path with their own configuration): ECS starts the new revision
behind the alternate target group, shifts the test listener rule, then the production listener
rule, and keeps the old revision for ``bakeTimeInMinutes`` (deployops' stability window).
deployops watches the deployment (``DescribeServiceDeployments``), asks its judge (the RB-1
rules over CloudWatch) at every poll, and rolls back with
``StopServiceDeployment(stopType=ROLLBACK)``, which returns production to the source revision.

    native = EcsNativeBlueGreen(client=ecs, cluster="shop", clock=clock)
    dep = native.start(service, task_definition="shop:8", settings=settings)
    outcome = native.watch(dep.arn, judge=rules, timeout_s=1800, interval_s=15)

:class:`EcsNativeDeployments` is the same exchange as the engine's ``NativeDeployments`` port
(``deployops deploy`` in ``aws.mode: ecs-native``): each deployment carries a ``PAUSE``
lifecycle hook at ``POST_TEST_TRAFFIC_SHIFT`` (timeout action ``ROLLBACK``), which the engine
answers with ``ContinueServiceDeployment`` once its smoke checks through the test listener
pass. Production forwards to ``targetGroupArn`` and the new revision starts behind
``alternateTargetGroupArn``: the driver reads the production rule first, so the two trade
places from one deployment to the next.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from deployops.clock import Clock
from deployops.domain.native import (
    PAUSE_STAGE,
    NativeDeployment,
    NativeStart,
    PauseHook,
    bake_minutes,
)
from deployops.drivers.aws._errors import map_aws_errors
from deployops.drivers.aws._resources import AwsResources
from deployops.drivers.aws.ecs import ServiceDeployment
from deployops.errors import (
    ConfigError,
    DriverError,
    NotFoundError,
    TimeoutError_,
    UnsupportedError,
)

__all__ = [
    "EcsNativeBlueGreen",
    "EcsNativeDeployments",
    "NativeOutcome",
    "NativeSettings",
    "native_configuration",
    "pause_hook",
]

STRATEGIES = ("BLUE_GREEN", "CANARY", "LINEAR")


@dataclass(frozen=True, slots=True, kw_only=True)
class NativeSettings:
    target_group_arn: str
    alternate_target_group_arn: str
    production_listener_rule: str
    test_listener_rule: str
    role_arn: str
    container_name: str
    container_port: int
    bake_time_s: float = 300.0  # DEP-3: the stability window
    strategy: str = "BLUE_GREEN"
    canary_percent: float = 10.0
    canary_bake_s: float = 300.0
    linear_step_percent: float = 25.0
    linear_step_bake_s: float = 60.0
    # The pause hook deployops answers (None: no hook, ECS moves production on its own).
    pause_timeout_s: float | None = None


def pause_hook(timeout_s: float) -> dict[str, Any]:
    """The ``PAUSE`` lifecycle hook that holds production until deployops' smoke checks
    through the test listener pass; if deployops never answers, ECS rolls back."""
    return {
        "targetType": "PAUSE",
        "lifecycleStages": [PAUSE_STAGE],
        "timeoutConfiguration": {
            "timeoutInMinutes": max(1, -(-int(timeout_s) // 60)),
            "action": "ROLLBACK",
        },
    }


def native_configuration(s: NativeSettings) -> dict[str, Any]:
    """The ``UpdateService`` parameters of an ECS-native deployment (validated against the
    ECS model in the tests)."""
    if s.strategy not in STRATEGIES:
        raise ValueError(f"strategy {s.strategy!r}: use one of {', '.join(STRATEGIES)}")
    config: dict[str, Any] = {
        "strategy": s.strategy,
        # Whole minutes, never shorter than deployops' observation (DEP-3).
        "bakeTimeInMinutes": bake_minutes(s.bake_time_s),
        "maximumPercent": 200,
        "minimumHealthyPercent": 100,
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
    }
    # ECS takes whole minutes; never shorter than deployops judges each step.
    if s.strategy == "CANARY":
        config["canaryConfiguration"] = {
            "canaryPercent": float(s.canary_percent),
            "canaryBakeTimeInMinutes": bake_minutes(s.canary_bake_s),
        }
    elif s.strategy == "LINEAR":
        config["linearConfiguration"] = {
            "stepPercent": float(s.linear_step_percent),
            "stepBakeTimeInMinutes": bake_minutes(s.linear_step_bake_s),
        }
    if s.pause_timeout_s is not None:
        config["lifecycleHooks"] = [pause_hook(s.pause_timeout_s)]
    return {
        "deploymentConfiguration": config,
        "loadBalancers": [
            {
                "targetGroupArn": s.target_group_arn,
                "containerName": s.container_name,
                "containerPort": s.container_port,
                "advancedConfiguration": {
                    "alternateTargetGroupArn": s.alternate_target_group_arn,
                    "productionListenerRule": s.production_listener_rule,
                    "testListenerRule": s.test_listener_rule,
                    "roleArn": s.role_arn,
                },
            }
        ],
    }


@dataclass(frozen=True, slots=True)
class NativeOutcome:
    """How a watched deployment ended: ``succeeded``, ``rolled_back`` (with the judge's reason
    or ECS's), or ``failed`` (a rollback that did not complete)."""

    status: str
    deployment: ServiceDeployment
    reason: str = ""
    polls: int = 0


class EcsNativeBlueGreen:
    def __init__(self, *, client: Any, cluster: str, clock: Clock) -> None:
        self.client = client
        self.cluster = cluster
        self.clock = clock

    def start(self, service: str, *, task_definition: str, settings: NativeSettings) -> str:
        """Start the deployment; returns its ARN."""
        with map_aws_errors("ecs:UpdateService", resource=f"service {service}"):
            self.client.update_service(
                cluster=self.cluster,
                service=service,
                taskDefinition=task_definition,
                **native_configuration(settings),
            )
        with map_aws_errors("ecs:ListServiceDeployments", resource=f"service {service}"):
            listed = self.client.list_service_deployments(
                cluster=self.cluster, service=service, status=["PENDING", "IN_PROGRESS"]
            ).get("serviceDeployments", [])
        if not listed:
            raise DriverError(
                "ecs",
                "ListServiceDeployments",
                f"{service}: no deployment started after UpdateService",
                hint="check the service's events in the ECS console",
            )
        return str(listed[0]["serviceDeploymentArn"])

    def describe(self, arn: str) -> ServiceDeployment:
        with map_aws_errors("ecs:DescribeServiceDeployments", resource=arn):
            found = self.client.describe_service_deployments(serviceDeploymentArns=[arn])
        raw = (found.get("serviceDeployments") or [{}])[0]
        return ServiceDeployment(
            arn=str(raw.get("serviceDeploymentArn", arn)),
            status=str(raw.get("status", "")),
            lifecycle_stage=str(raw.get("lifecycleStage", "")),
            reason=str(raw.get("statusReason", "")),
            target_revision=str((raw.get("targetServiceRevision") or {}).get("arn", "")),
            rollback=bool(raw.get("rollback")),
        )

    def rollback(self, arn: str) -> None:
        with map_aws_errors("ecs:StopServiceDeployment", resource=arn):
            self.client.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")

    def watch(
        self,
        arn: str,
        *,
        judge: Callable[[ServiceDeployment], str | None],
        timeout_s: float,
        interval_s: float,
        on_poll: Callable[[ServiceDeployment], None] | None = None,
    ) -> NativeOutcome:
        """Poll until the deployment ends. ``judge`` returns a reason to roll back, or None.
        After a rollback is requested, polls on until ECS reports it done."""
        deadline = self.clock.monotonic() + timeout_s
        polls = 0
        reason = ""
        while True:
            dep = self.describe(arn)
            polls += 1
            if on_poll is not None:
                on_poll(dep)
            if dep.status == "SUCCESSFUL":
                return NativeOutcome("succeeded", dep, polls=polls)
            if dep.status == "ROLLBACK_SUCCESSFUL" or (dep.status == "STOPPED" and reason):
                return NativeOutcome("rolled_back", dep, reason or dep.reason, polls)
            if dep.status in ("ROLLBACK_FAILED", "STOPPED"):
                return NativeOutcome("failed", dep, reason or dep.reason, polls)
            if not reason and dep.status in ("PENDING", "IN_PROGRESS"):
                verdict = judge(dep)
                if verdict:
                    reason = verdict
                    self.rollback(arn)
                    continue
            if self.clock.monotonic() >= deadline:
                raise TimeoutError_(
                    "ecs",
                    "DescribeServiceDeployments",
                    timeout_s,
                    hint="the deployment is still running on ECS; watch it in the console",
                )
            self.clock.sleep(interval_s)


def _deployment_from(raw: Mapping[str, Any], arn: str) -> NativeDeployment:
    hooks = []
    for h in raw.get("lifecycleHookDetails") or []:
        expires = h.get("expiresAt")
        hooks.append(
            PauseHook(
                hook_id=str(h.get("hookId", "")),
                target_type=str(h.get("targetType", "")),
                status=str(h.get("status", "")),
                expires_at=expires if isinstance(expires, datetime) else None,
                timeout_action=str(h.get("timeoutAction", "")),
            )
        )
    return NativeDeployment(
        arn=str(raw.get("serviceDeploymentArn", arn)),
        status=str(raw.get("status", "")),
        stage=str(raw.get("lifecycleStage", "")),
        reason=str(raw.get("statusReason", "")),
        target_revision=str((raw.get("targetServiceRevision") or {}).get("arn", "")),
        hooks=tuple(hooks),
    )


class EcsNativeDeployments:
    """The ``NativeDeployments`` port on ECS: one service per deployops service, deployed by
    ECS's ``BLUE_GREEN`` (``CANARY``, ``LINEAR``) with the stack's listener rules and role."""

    name: ClassVar[str] = "ecs-native"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"blue_green", "pause_hook", "rollback", "circuit_breaker"}
    )

    def __init__(
        self,
        *,
        client: Any,
        resources: AwsResources,
        target_group_arn: Callable[[str], str],
        forwards: Callable[[str], str],
        container_port: Callable[[str], int],
    ) -> None:
        self.client = client
        self.resources = resources
        self.target_group_arn = target_group_arn
        self.forwards = forwards  # listener rule ARN -> the target group ARN it forwards to
        self.container_port = container_port

    def _ecs_service(self, service: str) -> str:
        name = self.resources.native_services.get(service)
        if not name:
            raise ConfigError(
                f"no ECS service is known for {service!r} in aws.mode ecs-native",
                path="environments.<env>.aws.terraform_outputs",
                hint="apply infrastructure/ with -var deployment_mode=ecs-native and export "
                "`terraform -chdir=infrastructure output -json > tf-outputs.json` again",
            )
        return name

    def _rules(self) -> tuple[str, str, str]:
        r = self.resources
        missing = [
            name
            for name, value in (
                ("prod_listener_rule_arn", r.prod_listener_rule),
                ("test_listener_rule_arn", r.test_listener_rule),
                ("ecs_infrastructure_role_arn", r.infrastructure_role_arn),
            )
            if not value
        ]
        if missing:
            raise ConfigError(
                f"the Terraform outputs lack {', '.join(missing)}, which ECS blue/green needs",
                path="environments.<env>.aws.terraform_outputs",
                hint="apply infrastructure/ with -var deployment_mode=ecs-native and export "
                "the outputs again",
            )
        return r.prod_listener_rule, r.test_listener_rule, r.infrastructure_role_arn

    def start(self, start: NativeStart) -> str:
        ecs_name = self._ecs_service(start.service)
        running = self._running(ecs_name)
        if running:
            current = self._service_task_definition(ecs_name)
            if current.rsplit("/", 1)[-1] == start.task_definition:
                return running[0]  # started before an interruption: the same deployment
            raise DriverError(
                "ecs",
                "UpdateService",
                f"{ecs_name} already has a deployment in progress ({running[0]})",
                hint="wait for it to finish (the ECS console's Deployments tab) or stop it, "
                "then deploy again",
            )
        if not hasattr(self.client, "continue_service_deployment"):
            raise UnsupportedError(
                "this boto3 cannot answer ECS pause hooks (no ContinueServiceDeployment)",
                path="environments.<env>.aws.mode",
                hint="pip install -U 'deployops[aws]' (a newer boto3), or use aws.mode: services",
            )
        prod_rule, test_rule, role = self._rules()
        production = self.forwards(prod_rule)
        alternate = self.target_group_arn(start.target_group)
        if production == alternate:
            # Production already forwards to the group named idle: keep the two apart.
            production = self.target_group_arn(start.previous_target_group)
        settings = NativeSettings(
            target_group_arn=production,
            alternate_target_group_arn=alternate,
            production_listener_rule=prod_rule,
            test_listener_rule=test_rule,
            role_arn=role,
            container_name=self.resources.container_name,
            container_port=self.container_port(start.task_definition),
            bake_time_s=start.bake_time_s,
            strategy=start.strategy,
            pause_timeout_s=start.pause_timeout_s,
            canary_percent=start.canary_percent,
            canary_bake_s=start.canary_bake_s,
            linear_step_percent=start.step_percent,
            linear_step_bake_s=start.step_bake_s,
        )
        config = native_configuration(settings)
        with map_aws_errors("ecs:UpdateService", resource=f"service {ecs_name}"):
            self.client.update_service(
                cluster=self.resources.cluster,
                service=ecs_name,
                taskDefinition=start.task_definition,
                **config,
            )
        running = self._running(ecs_name)
        if not running:
            raise DriverError(
                "ecs",
                "ListServiceDeployments",
                f"{ecs_name}: no deployment started after UpdateService",
                hint="check the service's events in the ECS console",
            )
        return running[0]

    def _running(self, ecs_name: str) -> list[str]:
        with map_aws_errors("ecs:ListServiceDeployments", resource=f"service {ecs_name}"):
            listed = self.client.list_service_deployments(
                cluster=self.resources.cluster,
                service=ecs_name,
                status=["PENDING", "IN_PROGRESS"],
            ).get("serviceDeployments", [])
        return [str(d["serviceDeploymentArn"]) for d in listed]

    def _service_task_definition(self, ecs_name: str) -> str:
        with map_aws_errors("ecs:DescribeServices", resource=f"service {ecs_name}"):
            found = self.client.describe_services(
                cluster=self.resources.cluster, services=[ecs_name]
            )
        services = found.get("services") or [{}]
        return str(services[0].get("taskDefinition", ""))

    def describe(self, deployment: str) -> NativeDeployment:
        with map_aws_errors("ecs:DescribeServiceDeployments", resource=deployment):
            found = self.client.describe_service_deployments(serviceDeploymentArns=[deployment])
        raw = found.get("serviceDeployments") or []
        if not raw:
            raise NotFoundError(
                f"ECS service deployment {deployment} does not exist",
                hint="`deployops deployments show` names the deployment; check the region",
            )
        return _deployment_from(raw[0], deployment)

    def release(self, deployment: str, hook_id: str, *, rollback: bool = False) -> None:
        with map_aws_errors("ecs:ContinueServiceDeployment", resource=deployment):
            self.client.continue_service_deployment(
                serviceDeploymentArn=deployment,
                hookId=hook_id,
                action="ROLLBACK" if rollback else "CONTINUE",
            )

    def stop(self, deployment: str, *, rollback: bool = True) -> None:
        with map_aws_errors("ecs:StopServiceDeployment", resource=deployment):
            self.client.stop_service_deployment(
                serviceDeploymentArn=deployment, stopType="ROLLBACK" if rollback else "ABORT"
            )
