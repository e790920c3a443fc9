"""The ``aws`` platform: ECS on Fargate, ALB, CloudWatch, Application Auto Scaling, SNS.

``build(project, environment, clock=..., store=...)`` reads the environment's ``aws:`` section
and the Terraform outputs file it names, and returns the :class:`Platform` of AWS drivers.
Clients are built only by :mod:`deployops.drivers.aws._session`; nothing calls AWS until the
engine does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from deployops.config.monitoring import scaling_policy
from deployops.config.terraform_outputs import load_terraform_outputs
from deployops.domain.names import target_group
from deployops.domain.scaling import ScalingPolicy
from deployops.drivers import Platform
from deployops.drivers.aws._resources import AwsResources, from_outputs
from deployops.drivers.aws._session import AwsSession, AwsSettings
from deployops.drivers.aws.autoscaling import AppAutoScaler
from deployops.drivers.aws.cloudwatch import (
    AlarmChange,
    AlarmTargets,
    CloudWatchAlarms,
    CloudWatchMetrics,
    render_alarms,
)
from deployops.drivers.aws.ecs import EcsCompute
from deployops.drivers.aws.ecs_native import EcsNativeDeployments
from deployops.drivers.aws.ecs_rolling import EcsRollingDeployments
from deployops.drivers.aws.elbv2 import ElbTraffic
from deployops.drivers.aws.sns import SnsNotifier
from deployops.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from deployops.clock import Clock
    from deployops.config.project import ProjectConfig
    from deployops.domain.alarms import AlarmDefinition
    from deployops.store import StateStore

__all__ = [
    "AppAutoScaler",
    "AwsResources",
    "AwsSession",
    "AwsSettings",
    "CloudWatchMetrics",
    "EcsCompute",
    "EcsNativeDeployments",
    "EcsRollingDeployments",
    "ElbTraffic",
    "SnsNotifier",
    "alarm_sync",
    "build",
    "build_with",
    "resources_for",
]


def resources_for(project: ProjectConfig, environment: str) -> AwsResources:
    """The AWS resources of ``environment``, from its Terraform outputs file."""
    env = project.environment(environment)
    where = f"environments.{environment}.aws.terraform_outputs"
    if not env.aws.terraform_outputs:
        raise ConfigError(
            "an aws environment needs the Terraform outputs of its stack",
            path=where,
            file=str(project.path),
            hint="run `terraform -chdir=infrastructure output -json > tf-outputs.json` and set "
            f"{where}: tf-outputs.json in deployops.yaml",
        )
    path = Path(env.aws.terraform_outputs)
    if not path.is_absolute():
        path = project.root / path
    outputs = load_terraform_outputs(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    service = project.default_service() or next(iter(project.services))
    resources = from_outputs(outputs, service, extra=document)
    if resources.mode != env.aws.mode:
        raise ConfigError(
            f"aws.mode is {env.aws.mode!r} but the stack was built for {resources.mode!r}",
            path=f"environments.{environment}.aws.mode",
            file=str(project.path),
            hint=f"set aws.mode: {resources.mode} in deployops.yaml, or apply Terraform with "
            f"-var deployment_mode={env.aws.mode} and export the outputs again",
        )
    if env.aws.cluster and env.aws.cluster != resources.cluster:
        raise ConfigError(
            f"cluster {env.aws.cluster!r} differs from the Terraform outputs' "
            f"{resources.cluster!r}",
            path=f"environments.{environment}.aws.cluster",
            file=str(project.path),
            hint="remove aws.cluster (the outputs name it) or export the right stack's outputs",
        )
    return resources


def build(project: ProjectConfig, environment: str, *, clock: Clock, store: StateStore) -> Platform:
    del store  # the AWS drivers keep no state of their own: AWS is the record
    env = project.environment(environment)
    settings = AwsSettings(
        region=env.aws.region,
        profile=env.aws.profile,
        role_arn=env.aws.role_arn,
        endpoint_url=env.aws.endpoint_url,
    )
    return build_with(
        AwsSession(settings),
        resources_for(project, environment),
        environment=environment,
        clock=clock,
        secret_arn_prefix=env.aws.secret_arn_prefix,
        mode=env.aws.mode,
        scaling=scaling_policy(project.autoscaling) if project.autoscaling.enabled else None,
    )


def build_with(
    session: AwsSession,
    resources: AwsResources,
    *,
    environment: str,
    clock: Clock,
    secret_arn_prefix: str = "",
    mode: str = "services",
    alarm_names: tuple[str, ...] = (),
    scaling: ScalingPolicy | None = None,
) -> Platform:
    """The platform over an already built session (tests hand in one aimed at a stand-in)."""
    traffic = ElbTraffic(client=session.client("elbv2"), resources=resources, clock=clock)
    scaler = AppAutoScaler(
        client=session.client("application-autoscaling"),
        resources=resources,
        clock=clock,
        policy=scaling,
    )
    compute = EcsCompute(
        client=session.client("ecs"),
        resources=resources,
        clock=clock,
        target_group_arn=traffic.target_group_arn,
        region=session.region,
        alarm_names=alarm_names,
        secret_arn_prefix=secret_arn_prefix,
        on_desired_count=scaler.follow_desired,
    )
    metrics = CloudWatchMetrics(
        client=session.client("cloudwatch"),
        resources=resources,
        clock=clock,
        target_group=traffic.metric_ids,
    )
    extras: dict[str, object] = {
        "scaler": scaler,
        "aws_session": session,
        "aws_mode": mode,
    }
    if mode == "services":
        # Rolling updates: ECS watches the rollback rules armed as CloudWatch alarms (RB-1).
        extras["rollouts"] = EcsRollingDeployments(
            compute=compute,
            alarms=CloudWatchAlarms(client=session.client("cloudwatch")),
            target_group=traffic.metric_ids,
        )
    if mode == "ecs-native":
        # ECS carries out the blue/green; the engine drives it through this port.
        extras["native_deployments"] = EcsNativeDeployments(
            client=session.client("ecs"),
            resources=resources,
            target_group_arn=traffic.target_group_arn,
            forwards=traffic.rule_target_arn,
            container_port=lambda td: compute.describe_task_definition(td).spec.port,
        )
    if resources.alert_topic_arn:
        extras["sns"] = SnsNotifier(
            client=session.client("sns"), topic_arn=resources.alert_topic_arn
        )
    return Platform(
        name="aws",
        environment=environment,
        compute=compute,
        traffic=traffic,
        metrics=metrics,
        extras=extras,
    )


def alarm_sync(
    platform: Platform,
    definitions: Sequence[AlarmDefinition],
    *,
    service: str,
    dry_run: bool,
) -> list[AlarmChange]:
    """``deployops alarms sync``: the MON-1 alarms of ``service`` put to CloudWatch where they
    differ (``dry_run``: only compared), the same set with the same names as
    infrastructure/modules/monitoring renders (see :class:`AlarmTargets`)."""
    traffic = platform.traffic
    session = platform.extras["aws_session"]
    scaler = platform.extras["scaler"]
    assert isinstance(traffic, ElbTraffic)
    assert isinstance(session, AwsSession)
    assert isinstance(scaler, AppAutoScaler)
    resources = traffic.resources
    colours = {c: target_group(service, c) for c in ("blue", "green")}
    _, lb_arn = traffic.metric_ids(colours["blue"])
    if platform.extras.get("aws_mode") == "ecs-native":
        ecs_services = {"native": resources.native_services.get(service, service)}
    else:
        ecs_services = {c: resources.ecs_service(tg) for c, tg in colours.items()}
    policies = {c: scaler.scale_out_policy_arn(svc) for c, svc in ecs_services.items()}
    targets = AlarmTargets(
        prefix=resources.cluster,
        cluster=resources.cluster,
        load_balancer_arn=lb_arn,
        target_groups={c: traffic.target_group_arn(tg) for c, tg in colours.items()},
        ecs_services=ecs_services,
        warning_topic_arn=resources.alert_topic_arn,
        critical_topic_arn=resources.critical_topic_arn,
        scale_out_policies={c: arn for c, arn in policies.items() if arn},
        names=resources.alarm_names,
    )
    alarms = CloudWatchAlarms(client=session.client("cloudwatch"))
    return alarms.sync(render_alarms(definitions, targets), dry_run=dry_run)
