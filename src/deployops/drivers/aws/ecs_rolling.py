"""``EcsRollingDeployments``: ECS rolling updates with the rollback rules armed as CloudWatch
alarms (``aws.mode: services``, strategy ``rolling``; IAC-4, RB-1).

deployops renders the rules of its rollback policy that roll back (:func:`armed_rules`) as
CloudWatch alarms on the service's own target group and ECS service
(:func:`~deployops.drivers.aws.cloudwatch.render_rollback_alarms`, put idempotently as
``alarms sync`` puts the MON-1 alarms), then starts the rolling update with those alarms in
``deploymentConfiguration.alarms`` (``enable`` and ``rollback`` on) next to the circuit breaker.
ECS watches them while the deployment runs and for a bake time after it; one in ``ALARM``
fails the deployment and ECS rolls back to the last completed one. deployops reads the
deployment (``ListServiceDeployments`` / ``DescribeServiceDeployments``: its status, the
alarms ECS watched and the ones that triggered) and reports what ECS did.

    rolling = EcsRollingDeployments(compute=ecs, alarms=CloudWatchAlarms(client=cw),
                                    target_group=traffic.metric_ids)
    names = rolling.arm("web-blue", armed_rules(policy))
    dep = rolling.start("web-blue", task_definition="shop:8", desired_count=4, alarms=names)
    rolling.describe(dep).status
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from deployops.domain.rollout import ArmedRule, Rollout
from deployops.drivers.aws._errors import map_aws_errors
from deployops.drivers.aws.cloudwatch import (
    AlarmChange,
    AlarmScope,
    CloudWatchAlarms,
    render_rollback_alarms,
)
from deployops.drivers.aws.ecs import EcsCompute
from deployops.errors import DriverError, NotFoundError

__all__ = ["EcsRollingDeployments", "rollout_from"]


def rollout_from(raw: Mapping[str, Any], arn: str = "") -> Rollout:
    """A ``ServiceDeployment`` of ``DescribeServiceDeployments`` as a :class:`Rollout`."""
    alarms = raw.get("alarms") or {}
    breaker = raw.get("deploymentCircuitBreaker") or {}
    rollback = raw.get("rollback") or {}
    return Rollout(
        deployment=str(raw.get("serviceDeploymentArn", arn)),
        status=str(raw.get("status", "")),
        reason=str(raw.get("statusReason", "")),
        alarms=tuple(str(a) for a in alarms.get("alarmNames") or ()),
        triggered_alarms=tuple(str(a) for a in alarms.get("triggeredAlarmNames") or ()),
        circuit_breaker=breaker.get("status") == "TRIGGERED",
        rollback_reason=str(rollback.get("reason", "")),
    )


class EcsRollingDeployments:
    """The ``PlatformRollouts`` port on ECS rolling deployments with CloudWatch alarms."""

    name: ClassVar[str] = "ecs-rolling"
    capabilities: ClassVar[frozenset[str]] = frozenset({"alarms", "rollback", "circuit_breaker"})

    def __init__(
        self,
        *,
        compute: EcsCompute,
        alarms: CloudWatchAlarms,
        target_group: Callable[[str], tuple[str, str]],
    ) -> None:
        """``target_group(name)`` returns (target group ARN, load balancer ARN)."""
        self.compute = compute
        self.alarms = alarms
        self.target_group = target_group

    @property
    def client(self) -> Any:
        return self.compute.client

    @property
    def cluster(self) -> str:
        return self.compute.cluster

    def render(
        self, service: str, rules: Sequence[ArmedRule]
    ) -> list[dict[str, Any] | AlarmChange]:
        """The ``PutMetricAlarm`` requests arming ``rules`` on ``service`` (``web-blue``)."""
        tg_arn, lb_arn = self.target_group(service)
        ecs_name = self.compute.resources.ecs_service(service)
        scope = AlarmScope(
            cluster=self.cluster,
            load_balancer_arn=lb_arn,
            target_group_arns=(tg_arn,),
            ecs_services=(ecs_name,),
        )
        return render_rollback_alarms(rules, scope=scope, ecs_service=ecs_name)

    def arm(self, service: str, rules: Sequence[ArmedRule]) -> dict[str, str]:
        rendered = self.render(service, rules)
        changes = self.alarms.sync(rendered, dry_run=False)
        return {
            a.rule.name: c.name
            for a, c in zip(rules, changes, strict=True)
            if c.action != "skipped"
        }

    def start(
        self, service: str, *, task_definition: str, desired_count: int, alarms: Sequence[str]
    ) -> str:
        ecs_name = self.compute.resources.ecs_service(service)
        running = self._deployments(ecs_name, running=True)
        if running:
            current = self._task_definition(ecs_name)
            if current.rsplit("/", 1)[-1] == task_definition:
                return running[0]  # started before an interruption: the same deployment
            raise DriverError(
                "ecs",
                "UpdateService",
                f"{ecs_name} already has a deployment in progress ({running[0]})",
                hint="wait for it to finish (the ECS console's Deployments tab) or stop it, "
                "then deploy again",
            )
        self.compute.update_service(
            service,
            task_definition=task_definition,
            desired_count=desired_count,
            alarm_names=tuple(alarms),
        )
        # An alarm can end a deployment before it is first listed: then it is the newest.
        started = self._deployments(ecs_name, running=True) or self._deployments(
            ecs_name, running=False
        )
        if not started:
            raise DriverError(
                "ecs",
                "ListServiceDeployments",
                f"{ecs_name}: no deployment started after UpdateService",
                hint="check the service's events in the ECS console",
            )
        return started[0]

    def _deployments(self, ecs_name: str, *, running: bool) -> list[str]:
        request: dict[str, Any] = {"cluster": self.cluster, "service": ecs_name}
        if running:
            request["status"] = ["PENDING", "IN_PROGRESS"]
        with map_aws_errors("ecs:ListServiceDeployments", resource=f"service {ecs_name}"):
            listed = self.client.list_service_deployments(**request).get("serviceDeployments", [])
        return [str(d["serviceDeploymentArn"]) for d in listed]

    def _task_definition(self, ecs_name: str) -> str:
        with map_aws_errors("ecs:DescribeServices", resource=f"service {ecs_name}"):
            found = self.client.describe_services(cluster=self.cluster, services=[ecs_name])
        services = found.get("services") or [{}]
        return str(services[0].get("taskDefinition", ""))

    def describe(self, deployment: str) -> Rollout:
        with map_aws_errors("ecs:DescribeServiceDeployments", resource=deployment):
            found = self.client.describe_service_deployments(serviceDeploymentArns=[deployment])
        raw = found.get("serviceDeployments") or []
        if not raw:
            raise NotFoundError(
                f"ECS service deployment {deployment} does not exist",
                hint="`deployops deployments show` names the deployment; check the region",
            )
        return rollout_from(raw[0], deployment)

    def close(self) -> None:
        return None
