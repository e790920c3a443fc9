"""The Terraform tree in ``infrastructure/`` carries the guide's values (IAC-1..IAC-5, MON-1).

No Terraform binary runs here, so every ``.tf`` file is parsed with python-hcl2 and the values
are checked where they are set: variable defaults, and the resource arguments that must refer to
those variables. ``infrastructure/defaults.json`` is the single source of the numbers; the drift
tests at the bottom fail when a variable default and the JSON disagree.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infrastructure"
MODULES = ("vpc", "ecs", "rds", "monitoring")
MODULE_DIRS = tuple(f"modules/{m}" for m in MODULES)
ALL_DIRS = (".", *MODULE_DIRS)
ALARM_NAMES = (
    "HighCPUUtilization",
    "HighErrorRate",
    "LowHealthyHosts",
    "HighMemoryUsage",
    "DatabaseConnections",
)
_OPTIONS = SerializationOptions(
    strip_string_quotes=True, explicit_blocks=False, with_comments=False
)
_INTERPOLATION = re.compile(r"^\$\{(?P<expr>.*)\}$", re.DOTALL)


@dataclass
class TfDir:
    """The blocks of one Terraform directory, merged over its ``.tf`` files."""

    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    data: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    terraform: list[dict[str, Any]] = field(default_factory=list)
    providers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def resource(self, rtype: str, name: str) -> dict[str, Any]:
        assert (rtype, name) in self.resources, f"resource {rtype}.{name} is missing"
        return self.resources[(rtype, name)]

    def resources_of(self, rtype: str) -> dict[str, dict[str, Any]]:
        return {n: body for (t, n), body in self.resources.items() if t == rtype}

    def default(self, variable: str) -> Any:
        assert variable in self.variables, f"variable {variable!r} is not declared"
        assert "default" in self.variables[variable], f"variable {variable!r} has no default"
        return self.variables[variable]["default"]

    def resolve(self, value: Any) -> Any:
        """``${var.x.y}`` becomes the default of ``x`` indexed by ``y``; literals stay."""
        expr = ref(value)
        if expr is None or not expr.startswith("var."):
            return value
        name, *keys = expr.removeprefix("var.").split(".")
        result = self.default(name)
        for key in keys:
            result = result[key]
        return result


def ref(value: Any) -> str | None:
    """The expression inside ``${...}``, or None for a literal."""
    if isinstance(value, str) and (m := _INTERPOLATION.match(value)):
        return m["expr"]
    return None


def bare(value: str) -> str:
    """An expression without its ``${...}`` wrapper (hcl2 adds it to some references only)."""
    return ref(value) or value


def one(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(blocks) == 1, blocks
    return blocks[0]


@cache
def tf(directory: str) -> TfDir:
    result = TfDir()
    files = sorted((INFRA / directory).glob("*.tf"))
    assert files, f"no .tf files in infrastructure/{directory}"
    for path in files:
        with path.open(encoding="utf-8") as handle:
            parsed = hcl2.load(handle, serialization_options=_OPTIONS)
        for block in parsed.get("variable", []):
            result.variables.update(block)
        for block in parsed.get("output", []):
            result.outputs.update(block)
        for block in parsed.get("module", []):
            result.modules.update(block)
        for kind, target in (("resource", result.resources), ("data", result.data)):
            for block in parsed.get(kind, []):
                for rtype, named in block.items():
                    for name, body in named.items():
                        target[(rtype, name)] = body
        for block in parsed.get("locals", []):
            result.locals.update(block)
        result.terraform.extend(parsed.get("terraform", []))
        for block in parsed.get("provider", []):
            result.providers.extend(block.items())
    return result


@cache
def defaults() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((INFRA / "defaults.json").read_text(encoding="utf-8"))
    return loaded


def json_at(dotted: str) -> Any:
    node: Any = defaults()
    for key in dotted.split("."):
        node = node[key]
    return node


# --------------------------------------------------------------------------------------------
# IAC-1: layout, versions, hygiene
# --------------------------------------------------------------------------------------------


def test_iac1_tree_has_the_guides_layout() -> None:
    """IAC-1: main/variables/outputs at the root and in each of vpc, ecs, rds, monitoring."""
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "defaults.json"):
        assert (INFRA / name).is_file(), name
    for module in MODULE_DIRS:
        for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
            assert (INFRA / module / name).is_file(), f"{module}/{name}"


@pytest.mark.parametrize("directory", ALL_DIRS)
def test_iac1_versions_are_pinned(directory: str) -> None:
    """IAC-1: Terraform >= 1.5 and the AWS provider pinned to the 5.x range everywhere."""
    block = one(tf(directory).terraform)
    assert block["required_version"] == ">= 1.5.0"
    aws = one(block["required_providers"])["aws"]
    assert aws["source"] == "hashicorp/aws"
    assert aws["version"] == "~> 5.0"


def test_iac1_root_uses_a_remote_backend_and_a_recovery_region_provider() -> None:
    """IAC-1, DR-5: S3 state backend; a second provider for the recovery region."""
    root = tf(".")
    assert "s3" in one(root.terraform)["backend"][0]
    providers = dict((p.get("alias", "default"), p) for _, p in root.providers)
    assert providers["default"]["region"] == "${var.region}"
    assert providers["dr"]["region"] == "${var.dr_region}"
    assert root.default("region") == defaults()["region"]


@pytest.mark.parametrize("directory", ALL_DIRS)
def test_iac1_every_variable_has_description_and_type(directory: str) -> None:
    """IAC-1: every input is documented and typed."""
    variables = tf(directory).variables
    assert variables
    for name, body in variables.items():
        assert body.get("description"), f"{directory}: variable {name} has no description"
        assert body.get("type"), f"{directory}: variable {name} has no type"


@pytest.mark.parametrize("directory", ALL_DIRS)
def test_iac1_every_output_has_a_description(directory: str) -> None:
    """IAC-1: every output is documented."""
    for name, body in tf(directory).outputs.items():
        assert body.get("description"), f"{directory}: output {name} has no description"


def test_iac1_module_calls_match_module_variables() -> None:
    """IAC-1: every input passed in main.tf is declared; every required input is passed."""
    meta = {"source", "providers", "depends_on", "count", "for_each", "version"}
    root = tf(".")
    assert set(root.modules) == set(MODULES)
    for name, call in root.modules.items():
        assert call["source"] == f"./modules/{name}"
        module = tf(f"modules/{name}")
        passed = set(call) - meta
        declared = set(module.variables)
        assert passed <= declared, f"module {name}: undeclared inputs {sorted(passed - declared)}"
        required = {v for v, body in module.variables.items() if "default" not in body}
        assert required <= passed, f"module {name}: required inputs not passed {required - passed}"


def test_iac1_module_outputs_used_by_root_exist() -> None:
    """IAC-1: every ``module.<m>.<output>`` the root refers to is an output of that module."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in INFRA.glob("*.tf"))
    used = set(re.findall(r"module\.(\w+)\.(\w+)", text))
    assert used
    for module, output in used:
        assert output in tf(f"modules/{module}").outputs, f"module.{module}.{output}"


def test_iac1_root_outputs_cover_what_deployops_reads() -> None:
    """IAC-1: the outputs load_terraform_outputs requires are all declared."""
    from deployops.config.terraform_outputs import OUTPUT_NAMES

    assert set(OUTPUT_NAMES) <= set(tf(".").outputs)


# --------------------------------------------------------------------------------------------
# IAC-2: network
# --------------------------------------------------------------------------------------------


def test_iac2_vpc_cidr_and_azs() -> None:
    """IAC-2: 10.0.0.0/16 over ap-northeast-1a and ap-northeast-1c."""
    vpc = tf("modules/vpc")
    assert vpc.resolve(vpc.resource("aws_vpc", "this")["cidr_block"]) == "10.0.0.0/16"
    assert vpc.default("azs") == ["ap-northeast-1a", "ap-northeast-1c"]
    assert tf(".").default("vpc_cidr") == "10.0.0.0/16"
    assert tf(".").default("azs") == ["ap-northeast-1a", "ap-northeast-1c"]


def test_iac2_public_and_private_subnets_in_every_az() -> None:
    """IAC-2: one public and one private subnet per AZ; nothing gets a public IP by default."""
    vpc = tf("modules/vpc")
    for tier in ("public", "private"):
        subnet = vpc.resource("aws_subnet", tier)
        assert subnet["count"] == "${length(var.azs)}"
        assert subnet["availability_zone"] == "${var.azs[count.index]}"
        assert subnet["cidr_block"] == f"${{var.{tier}_subnets[count.index]}}"
    assert vpc.resource("aws_subnet", "public")["map_public_ip_on_launch"] is False
    assert len(vpc.default("public_subnets")) == len(vpc.default("azs"))
    assert len(vpc.default("private_subnets")) == len(vpc.default("azs"))


def test_iac2_private_subnets_egress_through_nat() -> None:
    """IAC-2: private route tables default-route to a NAT gateway, public ones to the IGW."""
    vpc = tf("modules/vpc")
    assert vpc.resource("aws_route", "private_nat")["nat_gateway_id"].startswith(
        "${aws_nat_gateway.this["
    )
    assert vpc.resource("aws_route", "public_internet")["gateway_id"] == (
        "${aws_internet_gateway.this.id}"
    )
    assert vpc.resource("aws_nat_gateway", "this")["subnet_id"].startswith("${aws_subnet.public[")


def test_iac2_flow_logs_capture_all_traffic() -> None:
    """IAC-2, DR-1: VPC flow logs (all traffic) to an encrypted log group kept 90 days."""
    vpc = tf("modules/vpc")
    flow = vpc.resource("aws_flow_log", "this")
    assert flow["traffic_type"] == "ALL"
    assert flow["log_destination_type"] == "cloud-watch-logs"
    group = vpc.resource("aws_cloudwatch_log_group", "flow_logs")
    assert vpc.resolve(group["retention_in_days"]) == 90
    assert group["kms_key_id"] == "${aws_kms_key.flow_logs.arn}"


def test_iac2_security_groups_chain_alb_to_tasks_to_database() -> None:
    """IAC-2: the ALB reaches tasks, tasks reach the database, nothing else gets in."""
    vpc = tf("modules/vpc")
    ingress = vpc.resources_of("aws_vpc_security_group_ingress_rule")
    tasks_in = ingress["tasks_from_alb"]
    assert tasks_in["security_group_id"] == "${aws_security_group.tasks.id}"
    assert tasks_in["referenced_security_group_id"] == "${aws_security_group.alb.id}"
    assert tasks_in["from_port"] == tasks_in["to_port"] == "${var.container_port}"
    db_in = ingress["db_from_tasks"]
    assert db_in["security_group_id"] == "${aws_security_group.db.id}"
    assert db_in["referenced_security_group_id"] == "${aws_security_group.tasks.id}"
    assert db_in["from_port"] == db_in["to_port"] == "${var.db_port}"
    into_db = [r for r in ingress.values() if r["security_group_id"].endswith("db.id}")]
    assert into_db == [db_in]
    into_tasks = [r for r in ingress.values() if r["security_group_id"].endswith("tasks.id}")]
    assert into_tasks == [tasks_in]
    # The default security group is taken over with no rules at all.
    default_sg = vpc.resource("aws_default_security_group", "this")
    assert "ingress" not in default_sg
    assert "egress" not in default_sg


# --------------------------------------------------------------------------------------------
# IAC-3: cluster and service
# --------------------------------------------------------------------------------------------


def test_iac3_cluster_has_container_insights() -> None:
    """IAC-3: Container Insights enabled on the cluster."""
    cluster = tf("modules/ecs").resource("aws_ecs_cluster", "this")
    assert {"name": "containerInsights", "value": "enabled"} in cluster["setting"]


def test_iac3_service_runs_on_fargate_in_private_subnets() -> None:
    """IAC-3: Fargate launch type, awsvpc networking, no public IPs."""
    ecs = tf("modules/ecs")
    service = ecs.resource("aws_ecs_service", "this")
    assert service["launch_type"] == "FARGATE"
    network = one(service["network_configuration"])
    assert network["assign_public_ip"] is False
    assert network["subnets"] == "${var.private_subnet_ids}"
    task = ecs.resource("aws_ecs_task_definition", "this")
    assert task["requires_compatibilities"] == ["FARGATE"]
    assert task["network_mode"] == "awsvpc"


def test_iac3_autoscaling_between_2_and_10_tasks() -> None:
    """IAC-3: Application Auto Scaling min 2, max 10; the service starts at the minimum."""
    ecs = tf("modules/ecs")
    target = ecs.resource("aws_appautoscaling_target", "this")
    assert ecs.default("max_capacity") == 10
    assert target["max_capacity"] == '${each.key == "green" ? 0 : var.max_capacity}'
    assert target["scalable_dimension"] == "ecs:service:DesiredCount"
    service = ecs.resource("aws_ecs_service", "this")
    # One service per colour (aws.mode: services): the live colour starts at the minimum,
    # the idle colour (green) at 0 tasks and 0 capacity until deployops deploys to it.
    assert service["for_each"] == "${local.service_keys}"
    assert service["desired_count"] == '${each.key == "green" ? 0 : var.min_capacity}'
    assert target["min_capacity"] == '${each.key == "green" ? 0 : var.min_capacity}'
    assert ecs.default("min_capacity") == 2


def test_iac3_deployops_owned_attributes_are_ignored_by_terraform() -> None:
    """IAC-3, DEP-3: a later apply must not undo deployops' releases, scaling or switches."""
    ecs = tf("modules/ecs")
    service = ecs.resource("aws_ecs_service", "this")
    ignored = set(one(service["lifecycle"])["ignore_changes"])
    assert {"desired_count", "task_definition"} <= ignored
    assert "alarms" in ignored  # a rolling deploy arms the rollback rules as its alarms
    for listener in ("production", "test"):
        body = ecs.resource("aws_lb_listener", listener)
        assert "default_action" in one(body["lifecycle"])["ignore_changes"]


# --------------------------------------------------------------------------------------------
# IAC-4: deployment
# --------------------------------------------------------------------------------------------


def test_iac4_rolling_update_200_100_with_circuit_breaker() -> None:
    """IAC-4: ECS rolling update, maximum 200 %, minimum healthy 100 %, circuit breaker."""
    ecs = tf("modules/ecs")
    service = ecs.resource("aws_ecs_service", "this")
    assert ecs.resolve(service["deployment_maximum_percent"]) == 200
    assert ecs.resolve(service["deployment_minimum_healthy_percent"]) == 100
    assert one(service["deployment_controller"])["type"] == "ECS"
    breaker = one(service["deployment_circuit_breaker"])
    assert breaker == {"enable": True, "rollback": True}


def test_iac4_blue_and_green_target_groups_check_health() -> None:
    """IAC-4, DEP-1: two target groups, blue and green, probing /health."""
    ecs = tf("modules/ecs")
    groups = ecs.resource("aws_lb_target_group", "this")
    assert groups["for_each"] == '${toset(["blue", "green"])}'
    health = one(groups["health_check"])
    assert ecs.resolve(health["path"]) == "/health"
    assert groups["target_type"] == "ip"


def test_iac4_production_and_test_listeners() -> None:
    """IAC-4, DEP-3: HTTPS production listener on blue, test listener on green, HTTP redirects."""
    ecs = tf("modules/ecs")
    production = ecs.resource("aws_lb_listener", "production")
    assert production["port"] == 443
    assert production["protocol"] == "HTTPS"
    assert one(production["default_action"])["target_group_arn"] == (
        '${aws_lb_target_group.this["blue"].arn}'
    )
    test = ecs.resource("aws_lb_listener", "test")
    assert ecs.resolve(test["port"]) == 8443
    assert test["protocol"] == "HTTPS"
    assert one(test["default_action"])["target_group_arn"] == (
        '${aws_lb_target_group.this["green"].arn}'
    )
    http = ecs.resource("aws_lb_listener", "http")
    redirect = one(one(http["default_action"])["redirect"])
    assert redirect["protocol"] == "HTTPS"


# --------------------------------------------------------------------------------------------
# IAC-5: auto scaling policy
# --------------------------------------------------------------------------------------------


def test_iac5_target_tracking_cpu_70_with_300s_cooldowns() -> None:
    """IAC-5: scale out at 70 % CPU, cooldowns of 300 s."""
    ecs = tf("modules/ecs")
    policy = ecs.resource("aws_appautoscaling_policy", "cpu")
    assert policy["policy_type"] == "TargetTrackingScaling"
    config = one(policy["target_tracking_scaling_policy_configuration"])
    metric = one(config["predefined_metric_specification"])
    assert metric["predefined_metric_type"] == "ECSServiceAverageCPUUtilization"
    assert ecs.resolve(config["target_value"]) == 70
    assert ecs.resolve(config["scale_in_cooldown"]) == 300
    assert ecs.resolve(config["scale_out_cooldown"]) == 300


def test_iac5_alarm_scale_out_policy_adds_a_task_with_cooldown() -> None:
    """IAC-5, MON-1: the alarms' "scale out" adds one task, then waits the cooldown."""
    ecs = tf("modules/ecs")
    policy = ecs.resource("aws_appautoscaling_policy", "scale_out")
    config = one(policy["step_scaling_policy_configuration"])
    assert ecs.resolve(config["cooldown"]) == 300
    step = one(config["step_adjustment"])
    assert step["scaling_adjustment"] == 1
    assert step["metric_interval_lower_bound"] == 0


def test_iac5_metrics_are_evaluated_at_one_minute_resolution() -> None:
    """IAC-5: every alarm period equals the 60 s metric resolution."""
    resolution = json_at("scaling.metric_resolution_seconds")
    assert resolution == 60
    alarms = tf("modules/monitoring").default("alarms")
    assert {a["period_seconds"] for a in alarms.values()} == {resolution}


# --------------------------------------------------------------------------------------------
# ECS security: logs and least privilege
# --------------------------------------------------------------------------------------------


def test_app_logs_are_encrypted_and_kept_90_days() -> None:
    """DR-1: CloudWatch Logs for the application, 90 days, KMS."""
    ecs = tf("modules/ecs")
    group = ecs.resource("aws_cloudwatch_log_group", "app")
    assert ecs.resolve(group["retention_in_days"]) == 90
    assert group["kms_key_id"] == "${aws_kms_key.logs.arn}"
    container = ecs.locals["container_definition"]
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    assert container["readonlyRootFilesystem"] is True


def test_task_and_execution_roles_are_separate_and_scoped() -> None:
    """SEC-4: distinct roles; "*" only where IAM offers no resource-level permission."""
    ecs = tf("modules/ecs")
    task = ecs.resource("aws_ecs_task_definition", "this")
    assert task["execution_role_arn"] == "${aws_iam_role.execution.arn}"
    assert task["task_role_arn"] == "${aws_iam_role.task.arn}"
    assert ecs.resources_of("aws_iam_role_policy_attachment")["task"]["for_each"] == (
        "${toset(var.task_role_policy_arns)}"
    )
    policy = ecs.data[("aws_iam_policy_document", "execution")]
    statements = list(policy.get("statement", []))
    statements += [one(d["statement"]["content"]) for d in policy.get("dynamic", [])]
    wildcard = [s for s in statements if s["resources"] == ["*"]]
    assert [s["actions"] for s in wildcard] == [["ecr:GetAuthorizationToken"]]
    trust = one(ecs.data[("aws_iam_policy_document", "ecs_tasks_assume")]["statement"])
    assert {c["variable"] for c in trust["condition"]} == {"aws:SourceAccount", "aws:SourceArn"}


# --------------------------------------------------------------------------------------------
# Database (DR-1, DR-2, DR-5, SEC-1)
# --------------------------------------------------------------------------------------------


def test_rds_is_multi_az_private_encrypted_and_protected() -> None:
    """DR-1, DR-2: PostgreSQL, Multi-AZ, encrypted, 30 days PITR, deletion protection."""
    rds = tf("modules/rds")
    db = rds.resource("aws_db_instance", "this")
    assert db["engine"] == "postgres"
    assert rds.resolve(db["multi_az"]) is True
    assert db["storage_encrypted"] is True
    assert db["kms_key_id"] == "${aws_kms_key.this.arn}"
    assert db["publicly_accessible"] is False
    assert rds.resolve(db["backup_retention_period"]) == 30
    assert rds.resolve(db["deletion_protection"]) is True
    assert db["skip_final_snapshot"] is False
    assert db["delete_automated_backups"] is False
    assert db["db_subnet_group_name"] == "${aws_db_subnet_group.this.name}"
    assert tf(".").modules["rds"]["subnet_ids"] == "${module.vpc.private_subnet_ids}"


def test_rds_master_password_is_managed_by_secrets_manager() -> None:
    """SEC-1: manage_master_user_password = true unless the replica mode needs otherwise."""
    rds = tf("modules/rds")
    assert rds.default("manage_master_user_password") is True
    assert tf(".").default("db_manage_master_user_password") is True
    db = rds.resource("aws_db_instance", "this")
    assert db["manage_master_user_password"] == ("${var.manage_master_user_password ? true : null}")


def test_rds_cross_region_recovery_uses_the_passed_in_provider() -> None:
    """DR-5: replica / replicated backups live in the aws.replica region, passed by the root."""
    rds = tf("modules/rds")
    aws = one(one(rds.terraform)["required_providers"])["aws"]
    assert aws["configuration_aliases"] == ["${aws.replica}"]
    replica = rds.resource("aws_db_instance", "replica")
    assert replica["provider"] == "${aws.replica}"
    assert replica["replicate_source_db"] == "${aws_db_instance.this.arn}"
    backups = rds.resource("aws_db_instance_automated_backups_replication", "this")
    assert backups["provider"] == "${aws.replica}"
    assert rds.resolve(backups["retention_period"]) == 30
    assert rds.default("dr_mode") == "backup_replication"
    providers = tf(".").modules["rds"]["providers"]
    assert {bare(k): bare(v) for k, v in providers.items()} == {
        "aws": "aws",
        "aws.replica": "aws.dr",
    }


def test_rds_replica_mode_refuses_a_managed_master_password() -> None:
    """DR-5: AWS cannot replicate an instance with an RDS-managed password; plan says so."""
    db = tf("modules/rds").resource("aws_db_instance", "this")
    conditions = [p["condition"] for p in one(db["lifecycle"])["precondition"]]
    assert "${!(local.create_replica && var.manage_master_user_password)}" in conditions


# --------------------------------------------------------------------------------------------
# MON-1, MON-2: alarms and topics
# --------------------------------------------------------------------------------------------

_ALARM_RESOURCES = {
    "HighCPUUtilization": "high_cpu",
    "HighErrorRate": "high_error_rate",
    "LowHealthyHosts": "low_healthy_hosts",
    "HighMemoryUsage": "high_memory",
    "DatabaseConnections": "database_connections",
}
# Alarms of which there is one per colour: per ECS service, or per target group.
_PER_SERVICE = ("HighCPUUtilization", "HighMemoryUsage")
_PER_TARGET_GROUP = ("HighErrorRate",)


@pytest.mark.parametrize("alarm", ALARM_NAMES)
def test_mon1_alarm_uses_the_guides_metric_and_values(alarm: str) -> None:
    """MON-1: each alarm watches the guide's metric with its threshold, periods and period."""
    monitoring = tf("modules/monitoring")
    body = monitoring.resource("aws_cloudwatch_metric_alarm", _ALARM_RESOURCES[alarm])
    row = json_at(f"alarms.{alarm}")
    per_colour = alarm in _PER_SERVICE + _PER_TARGET_GROUP
    colour = "-${each.key}" if per_colour else ""
    assert body["alarm_name"] == f"${{var.name}}{colour}-{alarm}"
    assert monitoring.resolve(body["evaluation_periods"]) == row["evaluation_periods"]
    assert monitoring.resolve(body["comparison_operator"]) == row["comparison"]
    if "metric_query" in body:
        metrics = [q["metric"] for q in body["metric_query"] if "metric" in q]
        metrics += [one(d["metric_query"]["content"])["metric"] for d in body.get("dynamic", [])]
        metrics = [one(m) for m in metrics]
    else:
        metrics = [body]
    for metric in metrics:
        assert metric["namespace"] == row["namespace"]
        assert metric["metric_name"] == row["metric"]
        stat = metric.get("statistic", metric.get("stat"))
        assert monitoring.resolve(stat) == row["statistic"]
        assert monitoring.resolve(metric["period"]) == row["period_seconds"]
    if row["threshold_unit"] == "percent_of_max":
        assert body["threshold"] == "${local.db_connections_threshold}"
        expr = monitoring.locals["db_connections_threshold"]
        assert expr == (
            "${floor(var.db_max_connections * var.alarms.DatabaseConnections.threshold / 100)}"
        )
    else:
        assert monitoring.resolve(body["threshold"]) == row["threshold"]
    if alarm in _PER_SERVICE:
        assert body["alarm_actions"] == f"${{local.alarm_actions.{alarm}[each.key]}}"
    elif alarm in _PER_TARGET_GROUP:
        assert body["alarm_actions"] == (
            f"${{local.alarm_actions.{alarm}[local.target_group_service[each.key]]}}"
        )
    else:
        assert body["alarm_actions"] == f"${{local.shared_actions.{alarm}}}"


def test_mon1_the_guides_five_alarms_and_their_values() -> None:
    """MON-1: the table of the guide, row by row."""
    alarms = defaults()["alarms"]
    assert list(alarms) == list(ALARM_NAMES)
    table = {
        name: (
            row["metric"],
            row["comparison"],
            row["threshold"],
            row["evaluation_periods"],
            row["period_seconds"],
            row["action"],
            row["severity"],
        )
        for name, row in alarms.items()
    }
    ge, gt, lt = "GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold"
    assert table == {
        "HighCPUUtilization": ("CPUUtilization", ge, 80, 2, 60, "scale_out", "warning"),
        "HighErrorRate": ("HTTPCode_Target_5XX_Count", ge, 10, 1, 60, "notify", "warning"),
        "LowHealthyHosts": ("HealthyHostCount", lt, 2, 1, 60, "notify", "critical"),
        "HighMemoryUsage": ("MemoryUtilization", ge, 85, 2, 60, "scale_out", "warning"),
        "DatabaseConnections": ("DatabaseConnections", gt, 80, 1, 60, "notify", "warning"),
    }
    assert alarms["DatabaseConnections"]["threshold_unit"] == "percent_of_max"


def test_mon1_actions_route_to_scaling_and_topics() -> None:
    """MON-1, MON-2: scale_out alarms call the scaling policy; critical ones page."""
    monitoring = tf("modules/monitoring")
    notify = monitoring.locals["notify"]
    assert 'a.severity == "critical"' in notify
    assert "local.topics.critical" in notify
    actions = monitoring.locals["alarm_actions"]
    assert 'a.action == "scale_out"' in actions
    assert "svc.scale_out_policy_arn" in actions
    assert tf(".").modules["monitoring"]["services"] == "${module.ecs.services}"


def test_mon1_iac5_each_colour_has_its_own_alarms_and_scales_out_its_own_service() -> None:
    """MON-1 / IAC-5 per colour: blue and green swap roles on every deploy, so CPU and memory
    are watched per ECS service and each alarm triggers that service's own +1 task policy
    (never the idle colour's); the 5XX count is watched per target group; LowHealthyHosts
    stays one alarm over both groups. Only ``terraform plan`` on a real account shows the
    expanded alarms (the provider cannot be downloaded here)."""
    monitoring = tf("modules/monitoring")
    for alarm in _PER_SERVICE:
        body = monitoring.resource("aws_cloudwatch_metric_alarm", _ALARM_RESOURCES[alarm])
        assert body["for_each"] == "${var.services}"
        assert body["dimensions"] == {
            "ClusterName": "${var.cluster_name}",
            "ServiceName": "${each.value.service_name}",
        }
    errors = monitoring.resource("aws_cloudwatch_metric_alarm", "high_error_rate")
    assert errors["for_each"] == "${tomap(var.target_group_arn_suffixes)}"
    assert errors["dimensions"] == {
        "LoadBalancer": "${var.alb_arn_suffix}",
        "TargetGroup": "${each.value}",
    }
    healthy = monitoring.resource("aws_cloudwatch_metric_alarm", "low_healthy_hosts")
    assert "for_each" not in healthy
    # alarm -> colour -> [that colour's policy?] + topics
    actions = monitoring.locals["alarm_actions"]
    assert "for key, svc in var.services" in actions
    assert "[svc.scale_out_policy_arn]" in actions
    assert "contains(keys(var.services), tg)" in monitoring.locals["target_group_service"]
    # The ecs module hands over one entry per service, each with its own policy.
    services = tf("modules/ecs").outputs["services"]["value"]
    assert "aws_ecs_service.this" in services
    assert "aws_appautoscaling_policy.scale_out[key].arn" in services
    assert "service_name" in monitoring.variables["services"]["type"]


def test_mon1_per_colour_alarm_names_are_published_by_colour() -> None:
    outputs = tf("modules/monitoring").outputs["alarm_names"]["value"]
    for alarm in _PER_SERVICE + _PER_TARGET_GROUP:
        assert "for key, a in aws_cloudwatch_metric_alarm." in outputs[alarm]
    for alarm in ("LowHealthyHosts", "DatabaseConnections"):
        assert outputs[alarm].endswith(".alarm_name}")


def test_mon2_topics_are_encrypted_and_take_email_subscriptions() -> None:
    """MON-2: alerts and critical topics under a KMS key; e-mail subscriptions."""
    monitoring = tf("modules/monitoring")
    for topic in ("alerts", "critical"):
        body = monitoring.resource("aws_sns_topic", topic)
        assert body["kms_master_key_id"] == "${aws_kms_key.sns.arn}"
    assert monitoring.resource("aws_kms_key", "sns")["enable_key_rotation"] is True
    subscriptions = monitoring.resources_of("aws_sns_topic_subscription")
    assert subscriptions["alert_email"]["protocol"] == "email"
    assert subscriptions["alert_email"]["topic_arn"] == "${aws_sns_topic.alerts.arn}"
    assert subscriptions["critical_email"]["topic_arn"] == "${aws_sns_topic.critical.arn}"


# --------------------------------------------------------------------------------------------
# Drift: variable defaults == infrastructure/defaults.json
# --------------------------------------------------------------------------------------------

# (directory, variable) -> dotted path in defaults.json
_DEFAULTS_MAP: dict[tuple[str, str], str] = {
    (".", "region"): "region",
    (".", "vpc_cidr"): "vpc.cidr",
    (".", "azs"): "vpc.azs",
    (".", "public_subnets"): "vpc.public_subnets",
    (".", "private_subnets"): "vpc.private_subnets",
    ("modules/vpc", "cidr"): "vpc.cidr",
    ("modules/vpc", "azs"): "vpc.azs",
    ("modules/vpc", "public_subnets"): "vpc.public_subnets",
    ("modules/vpc", "private_subnets"): "vpc.private_subnets",
    ("modules/vpc", "flow_log_retention_in_days"): "logs.retention_days",
    ("modules/vpc", "db_port"): "database.port",
    (".", "deployment_maximum_percent"): "rollout.maximum_percent",
    (".", "deployment_minimum_healthy_percent"): "rollout.minimum_healthy_percent",
    (".", "health_check_path"): "rollout.health_check_path",
    ("modules/ecs", "deployment_maximum_percent"): "rollout.maximum_percent",
    ("modules/ecs", "deployment_minimum_healthy_percent"): "rollout.minimum_healthy_percent",
    ("modules/ecs", "health_check_path"): "rollout.health_check_path",
    (".", "min_capacity"): "scaling.min_capacity",
    (".", "max_capacity"): "scaling.max_capacity",
    (".", "cpu_target"): "scaling.cpu_target",
    (".", "scale_in_cooldown"): "scaling.scale_in_cooldown",
    (".", "scale_out_cooldown"): "scaling.scale_out_cooldown",
    ("modules/ecs", "min_capacity"): "scaling.min_capacity",
    ("modules/ecs", "max_capacity"): "scaling.max_capacity",
    ("modules/ecs", "cpu_target"): "scaling.cpu_target",
    ("modules/ecs", "scale_in_cooldown"): "scaling.scale_in_cooldown",
    ("modules/ecs", "scale_out_cooldown"): "scaling.scale_out_cooldown",
    (".", "log_retention_days"): "logs.retention_days",
    ("modules/ecs", "log_retention_days"): "logs.retention_days",
    ("modules/rds", "log_retention_days"): "logs.retention_days",
    (".", "db_backup_retention_days"): "database.backup_retention_days",
    ("modules/rds", "backup_retention_period"): "database.backup_retention_days",
    (".", "db_multi_az"): "database.multi_az",
    ("modules/rds", "multi_az"): "database.multi_az",
    (".", "db_port"): "database.port",
    ("modules/rds", "port"): "database.port",
    (".", "db_max_connections"): "database.max_connections",
    ("modules/rds", "max_connections"): "database.max_connections",
}


@pytest.mark.parametrize(("location", "json_path"), list(_DEFAULTS_MAP.items()), ids=str)
def test_variable_default_matches_defaults_json(location: tuple[str, str], json_path: str) -> None:
    """IAC-1..IAC-5: one source of truth; a Terraform default never drifts from the JSON."""
    directory, variable = location
    assert tf(directory).default(variable) == json_at(json_path), (
        f"infrastructure/{directory}/variables.tf: {variable} != defaults.json {json_path}"
    )


@pytest.mark.parametrize("directory", [".", "modules/monitoring"])
def test_alarm_defaults_match_defaults_json(directory: str) -> None:
    """MON-1: the alarms variable's default is the JSON table (minus what the code fixes)."""
    fixed_in_code = {"namespace", "metric", "threshold_unit"}
    expected = {
        name: {k: v for k, v in row.items() if k not in fixed_in_code}
        for name, row in defaults()["alarms"].items()
    }
    assert tf(directory).default("alarms") == expected


def test_root_passes_its_variables_to_the_modules() -> None:
    """IAC-1: the root's values reach the modules (a root default alone would change nothing)."""
    modules = tf(".").modules
    wiring = {
        ("vpc", "cidr"): "vpc_cidr",
        ("vpc", "azs"): "azs",
        ("vpc", "flow_log_retention_in_days"): "log_retention_days",
        ("ecs", "deployment_maximum_percent"): "deployment_maximum_percent",
        ("ecs", "deployment_minimum_healthy_percent"): "deployment_minimum_healthy_percent",
        ("ecs", "health_check_path"): "health_check_path",
        ("ecs", "min_capacity"): "min_capacity",
        ("ecs", "max_capacity"): "max_capacity",
        ("ecs", "cpu_target"): "cpu_target",
        ("ecs", "scale_in_cooldown"): "scale_in_cooldown",
        ("ecs", "scale_out_cooldown"): "scale_out_cooldown",
        ("ecs", "log_retention_days"): "log_retention_days",
        ("rds", "backup_retention_period"): "db_backup_retention_days",
        ("rds", "multi_az"): "db_multi_az",
        ("rds", "max_connections"): "db_max_connections",
        ("rds", "log_retention_days"): "log_retention_days",
        ("monitoring", "alarms"): "alarms",
    }
    for (module, argument), variable in wiring.items():
        assert modules[module][argument] == f"${{var.{variable}}}", f"module.{module}.{argument}"


def test_root_and_module_variable_types_agree() -> None:
    """IAC-1: a root variable passed straight through has the module variable's type."""
    root = tf(".")
    for module, call in root.modules.items():
        inner = tf(f"modules/{module}")
        for argument, value in call.items():
            expr = ref(value)
            if expr is None or not re.fullmatch(r"var\.\w+", expr):
                continue
            outer = root.variables[expr.removeprefix("var.")]
            assert outer["type"] == inner.variables[argument]["type"], f"{module}.{argument}"
