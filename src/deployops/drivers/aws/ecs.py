"""``EcsCompute``: the ``Compute`` port on ECS with Fargate.

- Task definitions are Fargate / ``awsvpc``, one container with the service's port,
  ``environment`` and ``secrets`` (``valueFrom``). The deployops version travels as the docker
  label ``deployops.version`` so a revision reads back to the spec that made it. Nothing here
  ever deregisters a task definition: a rollback needs the previous revision (CONVENTIONS 6).
- Services run with ``deploymentConfiguration`` maximum 200 % / minimum healthy 100 % and the
  deployment circuit breaker with rollback (IAC-4, DEP-7), plus the CloudWatch alarms named
  in ``alarm_names`` (the RB-1 rules armed on AWS's side for rolling deploys).
- ``describe_service`` lists the service's tasks (``ListTasks`` + ``DescribeTasks``) so the
  engine sees each task's revision, state and health as it does locally.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from deployops.clock import Clock
from deployops.domain.model import (
    HealthCheck,
    ServiceState,
    TaskDefinition,
    TaskDefinitionSpec,
    TaskInfo,
    TaskState,
)
from deployops.drivers.aws._errors import error_code, map_aws_errors
from deployops.drivers.aws._resources import AwsResources
from deployops.errors import ConfigError, NotFoundError

__all__ = ["EcsCompute", "ServiceDeployment", "ecs_deployment_configuration"]

VERSION_LABEL = "deployops.version"
HEALTH_LABEL = "deployops.health-check"

_TASK_STATES = {
    "PROVISIONING": TaskState.PENDING,
    "PENDING": TaskState.PENDING,
    "ACTIVATING": TaskState.PENDING,
    "RUNNING": TaskState.RUNNING,
    "DEACTIVATING": TaskState.STOPPED,
    "STOPPING": TaskState.STOPPED,
    "DEPROVISIONING": TaskState.STOPPED,
    "STOPPED": TaskState.STOPPED,
    "DELETED": TaskState.STOPPED,
}


def ecs_deployment_configuration(
    *,
    maximum_percent: int = 200,
    minimum_healthy_percent: int = 100,
    alarm_names: Sequence[str] = (),
) -> dict[str, Any]:
    """IAC-4 / DEP-7: the rolling settings every service gets."""
    config: dict[str, Any] = {
        "maximumPercent": maximum_percent,
        "minimumHealthyPercent": minimum_healthy_percent,
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
    }
    if alarm_names:
        config["alarms"] = {"alarmNames": list(alarm_names), "enable": True, "rollback": True}
    return config


@dataclass(frozen=True, slots=True)
class ServiceDeployment:
    """One ECS service deployment (``DescribeServiceDeployments``), for ``ecs-native`` mode."""

    arn: str
    status: str  # PENDING, IN_PROGRESS, SUCCESSFUL, STOPPED, ROLLBACK_*...
    lifecycle_stage: str = ""
    reason: str = ""
    target_revision: str = ""
    rollback: bool = False

    @property
    def finished(self) -> bool:
        return self.status in (
            "SUCCESSFUL",
            "STOPPED",
            "ROLLBACK_SUCCESSFUL",
            "ROLLBACK_FAILED",
        )


class EcsCompute:
    """Services of one ECS cluster, by the engine's names (``web-blue``, ``web-green``)."""

    name: ClassVar[str] = "ecs"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {
            "task_definitions",
            "services",
            "rolling_update",
            "restart_on_failure",
            "circuit_breaker",
            "fargate",
        }
    )

    def __init__(
        self,
        *,
        client: Any,
        resources: AwsResources,
        clock: Clock,
        target_group_arn: Callable[[str], str],
        region: str = "ap-northeast-1",
        alarm_names: Sequence[str] = (),
        secret_arn_prefix: str = "",
        health_check_grace_s: int = 60,
        on_desired_count: Callable[[str, int], None] | None = None,
    ) -> None:
        self.client = client
        self.resources = resources
        self.clock = clock
        self.target_group_arn = target_group_arn
        self.region = region
        self.alarm_names = tuple(alarm_names)
        self.secret_arn_prefix = secret_arn_prefix
        self.health_check_grace_s = health_check_grace_s
        # Application Auto Scaling's bounds follow a colour going idle or live.
        self.on_desired_count = on_desired_count

    @property
    def cluster(self) -> str:
        return self.resources.cluster

    # ------------------------------------------------------------------ task definitions
    def register_task_definition(self, spec: TaskDefinitionSpec) -> TaskDefinition:
        latest = self._latest(spec.family)
        if latest is not None and _same(latest.spec, spec):
            return latest
        container: dict[str, Any] = {
            "name": self.resources.container_name,
            "image": spec.image,
            "essential": True,
            "portMappings": [{"containerPort": spec.port, "protocol": "tcp"}],
            "environment": [{"name": k, "value": v} for k, v in spec.environment],
            "secrets": [
                {"name": k, "valueFrom": self._value_from(k, ref)} for k, ref in spec.secrets
            ],
            "dockerLabels": {
                VERSION_LABEL: spec.version,
                HEALTH_LABEL: json.dumps(_health_to(spec.health_check), sort_keys=True),
            },
        }
        if self.resources.log_group:
            container["logConfiguration"] = {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": self.resources.log_group,
                    "awslogs-region": self.region,
                    "awslogs-stream-prefix": spec.family,
                },
            }
        request: dict[str, Any] = {
            "family": spec.family,
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "cpu": str(spec.cpu),
            "memory": str(spec.memory),
            "containerDefinitions": [container],
        }
        if self.resources.execution_role_arn:
            request["executionRoleArn"] = self.resources.execution_role_arn
        if self.resources.task_role_arn:
            request["taskRoleArn"] = self.resources.task_role_arn
        with map_aws_errors("ecs:RegisterTaskDefinition", resource=f"family {spec.family}"):
            raw = self.client.register_task_definition(**request)["taskDefinition"]
        return self._task_definition_from(raw)

    def _value_from(self, name: str, ref: str) -> str:
        if not ref.startswith("secret://"):
            return ref  # an ARN or an SSM parameter name: ECS resolves it
        if not self.secret_arn_prefix:
            raise ConfigError(
                f"secret {name} refers to {ref}, which ECS cannot resolve by itself",
                path="environments.<env>.aws.secret_arn_prefix",
                hint="set aws.secret_arn_prefix (e.g. "
                "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:) in deployops.yaml, "
                "or reference the secret by its ARN",
            )
        return self.secret_arn_prefix + ref.removeprefix("secret://")

    def _latest(self, family: str) -> TaskDefinition | None:
        with map_aws_errors("ecs:DescribeTaskDefinition", resource=f"family {family}"):
            try:
                raw = self.client.describe_task_definition(taskDefinition=family)
            except Exception as exc:
                if error_code(exc) in ("ClientException", "InvalidParameterException"):
                    return None
                raise
        return self._task_definition_from(raw["taskDefinition"])

    def describe_task_definition(self, ref: str) -> TaskDefinition:
        with map_aws_errors("ecs:DescribeTaskDefinition", resource=f"task definition {ref}"):
            try:
                raw = self.client.describe_task_definition(taskDefinition=ref)
            except Exception as exc:
                if error_code(exc) in ("ClientException", "InvalidParameterException"):
                    raise NotFoundError(
                        f"task definition {ref!r} does not exist in {self.region}",
                        path="--version",
                        hint="`deployops deployments list` shows the revisions deployed before",
                    ) from exc
                raise
        return self._task_definition_from(raw["taskDefinition"])

    def _task_definition_from(self, raw: Mapping[str, Any]) -> TaskDefinition:
        containers = raw.get("containerDefinitions") or [{}]
        c = next(
            (x for x in containers if x.get("name") == self.resources.container_name),
            containers[0],
        )
        labels = c.get("dockerLabels") or {}
        ports = c.get("portMappings") or [{}]
        health = labels.get(HEALTH_LABEL)
        secrets = []
        for s in c.get("secrets") or []:
            ref = str(s["valueFrom"])
            if self.secret_arn_prefix and ref.startswith(self.secret_arn_prefix):
                ref = "secret://" + ref.removeprefix(self.secret_arn_prefix)
            secrets.append((str(s["name"]), ref))
        spec = TaskDefinitionSpec(
            family=str(raw["family"]),
            version=str(labels.get(VERSION_LABEL, "")),
            port=int(ports[0].get("containerPort", 0)),
            image=str(c.get("image", "")),
            environment=tuple(
                sorted((str(e["name"]), str(e["value"])) for e in c.get("environment") or [])
            ),
            secrets=tuple(sorted(secrets)),
            health_check=_health_from(json.loads(health)) if health else HealthCheck(),
            cpu=int(raw.get("cpu") or 256),
            memory=int(raw.get("memory") or 512),
        )
        return TaskDefinition(family=spec.family, revision=int(raw["revision"]), spec=spec)

    # ------------------------------------------------------------------ services
    def create_service(
        self, name: str, *, task_definition: str, desired_count: int, target_group: str
    ) -> ServiceState:
        ecs_name = self.resources.ecs_service(name)
        if self._raw_service(name) is not None:
            return self.update_service(
                name, task_definition=task_definition, desired_count=desired_count
            )
        container_port = self.describe_task_definition(task_definition).spec.port
        request: dict[str, Any] = {
            "cluster": self.cluster,
            "serviceName": ecs_name,
            "taskDefinition": task_definition,
            "desiredCount": desired_count,
            "launchType": "FARGATE",
            "loadBalancers": [
                {
                    "targetGroupArn": self.target_group_arn(target_group),
                    "containerName": self.resources.container_name,
                    "containerPort": container_port,
                }
            ],
            "deploymentConfiguration": ecs_deployment_configuration(alarm_names=self.alarm_names),
            "healthCheckGracePeriodSeconds": self.health_check_grace_s,
            "enableECSManagedTags": True,
            "propagateTags": "SERVICE",
            "tags": [{"key": "deployops.service", "value": name}],
        }
        if self.resources.subnets:
            request["networkConfiguration"] = {
                "awsvpcConfiguration": {
                    "subnets": list(self.resources.subnets),
                    "securityGroups": list(self.resources.security_groups),
                    "assignPublicIp": "ENABLED" if self.resources.assign_public_ip else "DISABLED",
                }
            }
        with map_aws_errors("ecs:CreateService", resource=f"service {ecs_name}"):
            raw = self.client.create_service(**request)["service"]
        return self._state_from(name, raw, tasks=())

    def update_service(
        self,
        name: str,
        *,
        task_definition: str | None = None,
        desired_count: int | None = None,
        alarm_names: Sequence[str] | None = None,
    ) -> ServiceState:
        """``alarm_names``: the alarms this rolling deployment is watched by (rollback on);
        None keeps the ones the driver was built with."""
        ecs_name = self.resources.ecs_service(name)
        request: dict[str, Any] = {"cluster": self.cluster, "service": ecs_name}
        if task_definition is not None:
            request["taskDefinition"] = task_definition
            request["deploymentConfiguration"] = ecs_deployment_configuration(
                alarm_names=self.alarm_names if alarm_names is None else alarm_names
            )
        if desired_count is not None:
            request["desiredCount"] = desired_count
            if self.on_desired_count is not None:
                self.on_desired_count(name, desired_count)
        with map_aws_errors("ecs:UpdateService", resource=f"service {ecs_name}"):
            raw = self.client.update_service(**request)["service"]
        return self._state_from(name, raw, tasks=())

    def _raw_service(self, name: str) -> Mapping[str, Any] | None:
        ecs_name = self.resources.ecs_service(name)
        with map_aws_errors("ecs:DescribeServices", resource=f"service {ecs_name}"):
            found = self.client.describe_services(cluster=self.cluster, services=[ecs_name])
        for raw in found.get("services", []):
            if raw.get("serviceName") == ecs_name and raw.get("status") != "INACTIVE":
                return dict(raw)
        for failure in found.get("failures", []):
            if failure.get("reason") not in ("MISSING", None):
                raise NotFoundError(
                    f"ECS DescribeServices for {ecs_name} in cluster {self.cluster}: "
                    f"{failure.get('reason')} {failure.get('detail', '')}".strip(),
                    path="environments.<env>.aws.cluster",
                    hint="check the cluster name in the Terraform outputs file and the region",
                )
        return None

    def describe_service(self, name: str) -> ServiceState | None:
        raw = self._raw_service(name)
        if raw is None:
            return None
        return self._state_from(name, raw, tasks=self._tasks(str(raw["serviceName"])))

    def _tasks(self, ecs_name: str) -> tuple[TaskInfo, ...]:
        arns: list[str] = []
        for status in ("RUNNING", "STOPPED"):
            with map_aws_errors("ecs:ListTasks", resource=f"service {ecs_name}"):
                page = self.client.list_tasks(
                    cluster=self.cluster, serviceName=ecs_name, desiredStatus=status
                )
            arns += [str(a) for a in page.get("taskArns", [])]
        if not arns:
            return ()
        out: list[TaskInfo] = []
        for i in range(0, len(arns), 100):  # DescribeTasks takes up to 100 tasks
            with map_aws_errors("ecs:DescribeTasks", resource=f"service {ecs_name}"):
                raw = self.client.describe_tasks(cluster=self.cluster, tasks=arns[i : i + 100])
            out += [_task_from(t) for t in raw.get("tasks", [])]
        return tuple(out)

    def _state_from(
        self, name: str, raw: Mapping[str, Any], *, tasks: tuple[TaskInfo, ...]
    ) -> ServiceState:
        lbs = raw.get("loadBalancers") or [{}]
        tg_arn = str(lbs[0].get("targetGroupArn", ""))
        tg = tg_arn.split(":targetgroup/", 1)[-1].split("/", 1)[0] if tg_arn else ""
        for engine_name, arn in self.resources.target_groups.items():
            if arn == tg_arn:
                tg = engine_name
        return ServiceState(
            name=name,
            task_definition=_ref(str(raw.get("taskDefinition", ""))),
            desired=int(raw.get("desiredCount", 0)),
            running=sum(1 for t in tasks if t.state is TaskState.RUNNING)
            if tasks
            else int(raw.get("runningCount", 0)),
            healthy=sum(1 for t in tasks if t.healthy),
            target_group=tg,
            tasks=tasks,
        )

    def delete_service(self, name: str) -> None:
        ecs_name = self.resources.ecs_service(name)
        if self._raw_service(name) is None:
            return
        with map_aws_errors("ecs:DeleteService", resource=f"service {ecs_name}"):
            try:
                self.client.delete_service(cluster=self.cluster, service=ecs_name, force=True)
            except Exception as exc:
                if error_code(exc) in ("ServiceNotFoundException", "ServiceNotActiveException"):
                    return
                raise

    def list_services(self) -> Sequence[str]:
        """Services that are ACTIVE (a deleted one drains, then stays INACTIVE for a while)."""
        arns: list[str] = []
        token = ""
        while True:
            request: dict[str, Any] = {"cluster": self.cluster}
            if token:
                request["nextToken"] = token
            with map_aws_errors("ecs:ListServices", resource=f"cluster {self.cluster}"):
                page = self.client.list_services(**request)
            arns += [str(a) for a in page.get("serviceArns", [])]
            token = str(page.get("nextToken") or "")
            if not token:
                break
        names: list[str] = []
        for i in range(0, len(arns), 10):  # DescribeServices takes up to 10 services
            with map_aws_errors("ecs:DescribeServices", resource=f"cluster {self.cluster}"):
                found = self.client.describe_services(
                    cluster=self.cluster, services=arns[i : i + 10]
                )
            names += [
                self.resources.engine_service(str(svc["serviceName"]))
                for svc in found.get("services", [])
                if svc.get("status") == "ACTIVE"
            ]
        return names

    # ------------------------------------------------------------------ ecs-native deployments
    def service_deployments(self, name: str) -> Sequence[ServiceDeployment]:
        """The service's deployments still running, newest first."""
        ecs_name = self.resources.ecs_service(name)
        with map_aws_errors("ecs:ListServiceDeployments", resource=f"service {ecs_name}"):
            listed = self.client.list_service_deployments(cluster=self.cluster, service=ecs_name)
        arns = [str(d["serviceDeploymentArn"]) for d in listed.get("serviceDeployments", [])]
        if not arns:
            return ()
        return [self.describe_deployment(a) for a in arns]

    def describe_deployment(self, arn: str) -> ServiceDeployment:
        with map_aws_errors("ecs:DescribeServiceDeployments", resource=arn):
            raw = self.client.describe_service_deployments(serviceDeploymentArns=[arn])
        found = raw.get("serviceDeployments") or []
        if not found:
            raise NotFoundError(f"ECS service deployment {arn} does not exist")
        d = found[0]
        target = (d.get("targetServiceRevision") or {}).get("arn", "")
        return ServiceDeployment(
            arn=str(d["serviceDeploymentArn"]),
            status=str(d.get("status", "")),
            lifecycle_stage=str(d.get("lifecycleStage", "")),
            reason=str(d.get("statusReason", "")),
            target_revision=str(target),
            rollback=bool(d.get("rollback")),
        )

    def stop_deployment(self, arn: str, *, rollback: bool = True) -> str:
        """``StopServiceDeployment``: with ``rollback`` ECS returns traffic to the source."""
        with map_aws_errors("ecs:StopServiceDeployment", resource=arn):
            raw = self.client.stop_service_deployment(
                serviceDeploymentArn=arn, stopType="ROLLBACK" if rollback else "ABORT"
            )
        return str(raw.get("serviceDeploymentArn", arn))

    def close(self) -> None:
        return None


def _ref(arn_or_ref: str) -> str:
    """``arn:aws:ecs:...:task-definition/web:3`` -> ``web:3``."""
    return arn_or_ref.rsplit("/", 1)[-1] if arn_or_ref else ""


def _task_from(raw: Mapping[str, Any]) -> TaskInfo:
    last = str(raw.get("lastStatus", "PENDING"))
    state = _TASK_STATES.get(last, TaskState.PENDING)
    health = str(raw.get("healthStatus", "UNKNOWN"))
    started = raw.get("startedAt")
    return TaskInfo(
        task_id=str(raw.get("taskArn", "")).rsplit("/", 1)[-1],
        state=state,
        # No container health check reads UNKNOWN: the target group's check is the gate then.
        healthy=state is TaskState.RUNNING and health in ("HEALTHY", "UNKNOWN"),
        task_definition=_ref(str(raw.get("taskDefinitionArn", ""))),
        started_at=started if isinstance(started, datetime) else None,
        last_error=str(raw.get("stoppedReason", "")) if state is TaskState.STOPPED else "",
    )


def _health_to(h: HealthCheck) -> dict[str, Any]:
    return {
        "path": h.path,
        "interval_s": h.interval_s,
        "timeout_s": h.timeout_s,
        "healthy_threshold": h.healthy_threshold,
        "unhealthy_threshold": h.unhealthy_threshold,
        "expected_status": h.expected_status,
    }


def _health_from(raw: Mapping[str, Any]) -> HealthCheck:
    return HealthCheck(
        path=str(raw.get("path", "/health")),
        interval_s=float(raw.get("interval_s", 5.0)),
        timeout_s=float(raw.get("timeout_s", 2.0)),
        healthy_threshold=int(raw.get("healthy_threshold", 2)),
        unhealthy_threshold=int(raw.get("unhealthy_threshold", 3)),
        expected_status=int(raw.get("expected_status", 200)),
    )


def _same(have: TaskDefinitionSpec, want: TaskDefinitionSpec) -> bool:
    """Equal in everything ECS stores (``command`` and ``working_dir`` are local-only)."""

    def key(s: TaskDefinitionSpec) -> tuple[Any, ...]:
        return (
            s.family,
            s.version,
            s.port,
            s.image,
            tuple(sorted(s.environment)),
            s.health_check,
            s.cpu,
            s.memory,
            tuple(k for k, _ in s.secrets),
        )

    return key(have) == key(want)
