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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deployops.clock import Clock
from deployops.drivers.aws._errors import map_aws_errors
from deployops.drivers.aws.ecs import ServiceDeployment
from deployops.errors import DriverError, TimeoutError_

__all__ = ["EcsNativeBlueGreen", "NativeOutcome", "NativeSettings", "native_configuration"]

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


def native_configuration(s: NativeSettings) -> dict[str, Any]:
    """The ``UpdateService`` parameters of an ECS-native deployment (validated against the
    ECS model in the tests)."""
    if s.strategy not in STRATEGIES:
        raise ValueError(f"strategy {s.strategy!r}: use one of {', '.join(STRATEGIES)}")
    config: dict[str, Any] = {
        "strategy": s.strategy,
        "bakeTimeInMinutes": max(0, round(s.bake_time_s / 60)),
        "maximumPercent": 200,
        "minimumHealthyPercent": 100,
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
    }
    if s.strategy == "CANARY":
        config["canaryConfiguration"] = {
            "canaryPercent": s.canary_percent,
            "canaryBakeTimeInMinutes": max(0, round(s.canary_bake_s / 60)),
        }
    elif s.strategy == "LINEAR":
        config["linearConfiguration"] = {
            "stepPercent": s.linear_step_percent,
            "stepBakeTimeInMinutes": max(0, round(s.linear_step_bake_s / 60)),
        }
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
