"""Which AWS resource each of the engine's names stands for.

The engine speaks of ``web-blue`` / ``web-green`` (target groups and their ECS services) and
``web-prod`` / ``web-test`` (listeners). :class:`AwsResources` maps those names onto the ARNs and
names Terraform created (read from ``terraform output -json``, see :func:`from_outputs`), so the
drivers never guess: a name with no mapping is looked up by its own name in AWS (a target group
deployops created itself) or is a ``NotFoundError`` naming the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from deployops.config.terraform_outputs import TerraformOutputs
from deployops.domain.names import prod_listener, target_group, test_listener

__all__ = ["AwsResources", "from_outputs"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AwsResources:
    cluster: str
    # engine name -> ARN
    listeners: Mapping[str, str] = field(default_factory=dict)
    target_groups: Mapping[str, str] = field(default_factory=dict)
    # engine name (``web-blue``) -> ECS service name
    services: Mapping[str, str] = field(default_factory=dict)
    # engine service (``web``) -> the ECS-native service and its two target groups
    native_services: Mapping[str, str] = field(default_factory=dict)
    # ecs-native: engine listener name -> the listener rule ECS shifts; the engine reads where
    # that listener sends traffic from the rule, not from the listener's default action
    listener_rules: Mapping[str, str] = field(default_factory=dict)
    vpc_id: str = ""
    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    assign_public_ip: bool = False
    execution_role_arn: str = ""
    task_role_arn: str = ""
    infrastructure_role_arn: str = ""  # ECS-native blue/green: lets ECS modify listener rules
    prod_listener_rule: str = ""  # ECS-native: the rules ECS shifts between the two groups
    test_listener_rule: str = ""
    mode: str = "services"
    container_name: str = "app"
    log_group: str = ""
    alert_topic_arn: str = ""
    critical_topic_arn: str = ""
    alb_dns_name: str = ""
    # Terraform's alarm names (``alarm_names`` output): alarm -> name, or colour -> name
    alarm_names: Mapping[str, str | Mapping[str, str]] = field(default_factory=dict)

    def ecs_service(self, name: str) -> str:
        return self.services.get(name, name)

    def engine_service(self, ecs_name: str) -> str:
        for engine, ecs in self.services.items():
            if ecs == ecs_name:
                return engine
        return ecs_name


def from_outputs(
    outputs: TerraformOutputs,
    service: str,
    *,
    extra: Mapping[str, object] | None = None,
) -> AwsResources:
    """Resources of one deployops ``service`` from the Terraform outputs.

    ``extra`` is the rest of the ``terraform output -json`` document (``private_subnet_ids``,
    ``tasks_security_group_id``, ``container_name``, ``alb_dns_name``, ``log_group_name``,
    ``task_execution_role_arn``, ``vpc_id``): optional outputs read when present.
    """
    more = dict(extra or {})

    def value(name: str) -> object:
        entry = more.get(name)
        return entry.get("value") if isinstance(entry, dict) else None

    def text(name: str, default: str = "") -> str:
        v = value(name)
        return v if isinstance(v, str) else default

    subnets = value("private_subnet_ids")
    raw_alarms = value("alarm_names")
    alarm_names: dict[str, str | Mapping[str, str]] = {}
    if isinstance(raw_alarms, dict):
        for alarm, named in raw_alarms.items():
            if isinstance(named, str):
                alarm_names[str(alarm)] = named
            elif isinstance(named, dict):
                alarm_names[str(alarm)] = {str(k): str(v) for k, v in named.items()}
    names = value("service_names")
    by_colour = names if isinstance(names, dict) else {}
    sg = text("tasks_security_group_id")
    mode = text("deployment_mode", "services")
    blue, green = target_group(service, "blue"), target_group(service, "green")
    if mode == "ecs-native":
        # One ECS service runs both revisions: every engine name of it is that service.
        native = str(by_colour.get("native", outputs.service))
        ecs_names = {blue: native, green: native, service: native}
        rules = {
            prod_listener(service): text("prod_listener_rule_arn"),
            test_listener(service): text("test_listener_rule_arn"),
        }
    else:
        ecs_names = {
            blue: str(by_colour.get("blue", target_group(outputs.service, "blue"))),
            green: str(by_colour.get("green", target_group(outputs.service, "green"))),
        }
        rules = {}
    return AwsResources(
        cluster=outputs.cluster,
        listeners={
            prod_listener(service): outputs.prod_listener_arn,
            test_listener(service): outputs.test_listener_arn,
        },
        target_groups={
            target_group(service, "blue"): outputs.blue_target_group_arn,
            target_group(service, "green"): outputs.green_target_group_arn,
        },
        services=ecs_names,
        native_services={service: str(by_colour.get("native", outputs.service))},
        listener_rules={k: v for k, v in rules.items() if v},
        vpc_id=text("vpc_id"),
        subnets=tuple(str(s) for s in subnets) if isinstance(subnets, list) else (),
        security_groups=(sg,) if sg else (),
        execution_role_arn=text("task_execution_role_arn"),
        task_role_arn=text("task_role_arn"),
        infrastructure_role_arn=text("ecs_infrastructure_role_arn"),
        prod_listener_rule=text("prod_listener_rule_arn"),
        test_listener_rule=text("test_listener_rule_arn"),
        mode=mode,
        container_name=text("container_name", "app"),
        log_group=text("log_group_name"),
        alert_topic_arn=outputs.alert_topic_arn,
        critical_topic_arn=outputs.critical_topic_arn,
        alb_dns_name=text("alb_dns_name"),
        alarm_names=alarm_names,
    )
