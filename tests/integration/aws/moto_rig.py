"""An AWS stand-in for tests: moto's server on a loopback port, plus a simulator for what moto
does not do.

moto 5 provisions and records (listeners and switches, task definitions, services, alarms,
scaling policies, SNS) but never runs ECS tasks, never registers them in target groups, returns
no percentile from CloudWatch and never evaluates alarms. :class:`EcsSimulator` answers exactly
those calls (``ecs:ListTasks``, ``ecs:DescribeTasks``, ``elbv2:DescribeTargetHealth``,
``cloudwatch:GetMetricData``) from moto's own state (each service's desired count and task
definition, each listener's target group) on the injected clock: a task is RUNNING
``start_delay_s`` after it is wanted and its target healthy ``health_delay_s`` later, unless its
task definition carries the sample service's fault switches (``FAULT_HEALTH_FAIL``,
``FAULT_ERROR_RATE``, ``FAULT_LATENCY_MS``). Every simulated response is validated against the
AWS model exactly as ``botocore.stub.Stubber`` validates its canned responses, so a driver cannot
rely on a shape AWS would not send. What neither can show: real task start-up times, ALB
health-check timing, CloudWatch's publication delay and real IAM evaluation.

For ``aws.mode: ecs-native`` (``provision(mode="ecs-native")``) moto has no service
deployments at all (no ``ListServiceDeployments``, ``DescribeServiceDeployments``,
``StopServiceDeployment``, ``ContinueServiceDeployment``, and ``UpdateService`` drops the
strategy), so the simulator also plays ECS's blue/green controller: an ``UpdateService`` with
``strategy: BLUE_GREEN`` opens a deployment that walks the lifecycle stages on the injected
clock, starts the new revision's tasks behind the alternate target group, moves moto's real
listener rules (``ModifyRule``) at the test and production traffic shifts, holds at a ``PAUSE``
hook until ``ContinueServiceDeployment``, bakes, then stops the old revision; a rollback
(``StopServiceDeployment(ROLLBACK)``, a hook answered ``ROLLBACK`` or timing out, or the
circuit breaker when the new tasks never turn healthy) moves the rules back and stops the new
tasks. It follows the documented stage order; how long each stage takes on ECS, and whether
ECS accepts the two target groups trading places between deployments, only a real account
shows.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ParamValidationError
from botocore.validate import ParamValidator
from moto.server import ThreadedMotoServer

from deployops.clock import Clock
from deployops.domain.model import ProbeResult
from deployops.drivers.aws import AwsResources
from deployops.drivers.aws._session import AwsSession, AwsSettings

REGION = "ap-northeast-1"
ACCOUNT = "123456789012"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoServer:
    """``ThreadedMotoServer`` on a free loopback port; :meth:`reset` empties every backend."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()


def session_for(server: MotoServer) -> AwsSession:
    """Built from the environment (``AWS_ENDPOINT_URL``) the way the product builds it."""
    return AwsSession(AwsSettings(region=REGION, max_attempts=2))


@dataclass
class World:
    """What :func:`provision` created, by the engine's names."""

    resources: AwsResources
    load_balancer_arn: str
    prod_port: int
    test_port: int
    outputs_document: dict[str, Any]

    def write_outputs(self, path: Path) -> Path:
        path.write_text(json.dumps(self.outputs_document, indent=2), encoding="utf-8")
        return path


def provision(
    session: AwsSession,
    *,
    service: str = "web",
    stack: str = "shop-staging",
    terraform_owned: bool = True,
    mode: str = "services",
    desired_count: int = 4,
) -> World:
    """What ``infrastructure/`` builds for one service, in moto: a VPC with two subnets, an
    ALB with a production (80 -> blue) and a test (8080 -> green) listener, the two colours'
    target groups, the cluster, and the alert topics. ``terraform_owned=False`` leaves the
    target groups and services to deployops (looked up, created and deleted by name).
    ``mode="ecs-native"`` builds what the module builds for it: listener rules ECS shifts
    (production -> blue, test -> green), the infrastructure role, and one service running
    Terraform's bootstrap task definition behind blue."""
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=az)["Subnet"][
            "SubnetId"
        ]
        for i, az in enumerate((f"{REGION}a", f"{REGION}c"))
    ]
    sg = ec2.create_security_group(GroupName=f"{stack}-tasks", Description="tasks", VpcId=vpc)[
        "GroupId"
    ]
    elb = session.client("elbv2")
    lb = elb.create_load_balancer(Name=stack, Subnets=subnets, Type="application")["LoadBalancers"][
        0
    ]
    tgs = {}
    for colour in ("blue", "green"):
        tgs[colour] = elb.create_target_group(
            Name=f"{stack}-{colour}",
            Protocol="HTTP",
            Port=3000,
            VpcId=vpc,
            TargetType="ip",
            HealthCheckPath="/health",
        )["TargetGroups"][0]["TargetGroupArn"]
    prod = elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tgs["blue"]}],
    )["Listeners"][0]["ListenerArn"]
    test = elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=8080,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tgs["green"]}],
    )["Listeners"][0]["ListenerArn"]
    ecs = session.client("ecs")
    cluster = ecs.create_cluster(clusterName=stack)["cluster"]
    native_extra: dict[str, Any] = {}
    rules: dict[str, str] = {}
    if mode == "ecs-native":
        for name, listener, colour in (("prod", prod, "blue"), ("test", test, "green")):
            rules[f"{service}-{name}"] = elb.create_rule(
                ListenerArn=listener,
                Priority=1,
                Conditions=[{"Field": "path-pattern", "Values": ["/*"]}],
                Actions=[{"Type": "forward", "TargetGroupArn": tgs[colour]}],
            )["Rules"][0]["RuleArn"]
        iam = session.client("iam")
        role = iam.create_role(
            RoleName=f"{stack}-ecs-infrastructure",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "ecs.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        bootstrap = ecs.register_task_definition(
            family=stack,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=[
                {
                    "name": "app",
                    "image": "public.ecr.aws/nginx/nginx:stable",
                    "essential": True,
                    "portMappings": [{"containerPort": 3000, "protocol": "tcp"}],
                    "environment": [{"name": "PORT", "value": "3000"}],
                }
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(
            cluster=stack,
            serviceName=stack,
            taskDefinition=bootstrap,
            desiredCount=desired_count,
            launchType="FARGATE",
            loadBalancers=[
                {"targetGroupArn": tgs["blue"], "containerName": "app", "containerPort": 3000}
            ],
            networkConfiguration={
                "awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg]}
            },
        )
        native_extra = {
            "deployment_mode": mode,
            "prod_listener_rule_arn": rules[f"{service}-prod"],
            "test_listener_rule_arn": rules[f"{service}-test"],
            "ecs_infrastructure_role_arn": role,
            "service_names": {"native": stack},
        }
    sns = session.client("sns")
    alert = sns.create_topic(Name=f"{stack}-alerts")["TopicArn"]
    critical = sns.create_topic(Name=f"{stack}-critical-alerts")["TopicArn"]

    def out(value: Any) -> dict[str, Any]:
        return {"sensitive": False, "type": "string", "value": value}

    document = {
        "region": out(REGION),
        "cluster_name": out(stack),
        "cluster_arn": out(cluster["clusterArn"]),
        "service_name": out(stack),
        "task_definition_family": out(stack),
        "container_name": out("app"),
        "prod_listener_arn": out(prod),
        "test_listener_arn": out(test),
        "blue_target_group_arn": out(tgs["blue"]),
        "green_target_group_arn": out(tgs["green"]),
        "alb_dns_name": out(lb["DNSName"]),
        "vpc_id": out(vpc),
        "private_subnet_ids": {"sensitive": False, "type": ["list", "string"], "value": subnets},
        "tasks_security_group_id": out(sg),
        "log_group_name": out(f"/ecs/{stack}"),
        "db_endpoint": out(f"{stack}.abcdefghijkl.{REGION}.rds.amazonaws.com:5432"),
        "alert_topic_arn": out(alert),
        "critical_topic_arn": out(critical),
    }
    for key, value in native_extra.items():
        kind = ["map", "string"] if isinstance(value, dict) else "string"
        document[key] = {"sensitive": False, "type": kind, "value": value}
    resources = AwsResources(
        cluster=stack,
        listeners={f"{service}-prod": prod, f"{service}-test": test},
        target_groups={f"{service}-blue": tgs["blue"], f"{service}-green": tgs["green"]}
        if terraform_owned
        else {},
        services={f"{service}-blue": stack, f"{service}-green": stack, service: stack}
        if mode == "ecs-native"
        else {f"{service}-blue": f"{stack}-blue", f"{service}-green": f"{stack}-green"}
        if terraform_owned
        else {},
        native_services={service: stack},
        listener_rules=rules,
        prod_listener_rule=rules.get(f"{service}-prod", ""),
        test_listener_rule=rules.get(f"{service}-test", ""),
        infrastructure_role_arn=str(native_extra.get("ecs_infrastructure_role_arn", "")),
        mode=mode,
        vpc_id=vpc,
        subnets=tuple(subnets),
        security_groups=(sg,),
        container_name="app",
        log_group=f"/ecs/{stack}",
        alert_topic_arn=alert,
        critical_topic_arn=critical,
        alb_dns_name=str(lb["DNSName"]),
    )
    return World(
        resources=resources,
        load_balancer_arn=str(lb["LoadBalancerArn"]),
        prod_port=80,
        test_port=8080,
        outputs_document=document,
    )


# ---------------------------------------------------------------------- the simulator
@dataclass
class _SimTask:
    arn: str
    task_definition_arn: str
    wanted_at: float
    ip: str
    stopped_at: float | None = None
    tg_arn: str = ""  # ecs-native: the target group this revision's tasks are registered in


# ECS's blue/green lifecycle stages, in order (the ECS developer guide's table).
NATIVE_STAGES = (
    "PRE_SCALE_UP",
    "SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
    "BAKE_TIME",
    "CLEAN_UP",
)


@dataclass
class _SimDeployment:
    arn: str
    service: str
    source_td: str
    target_td: str
    source_tg: str
    target_tg: str
    prod_rule: str
    test_rule: str
    bake_s: float
    pause_stages: frozenset[str]
    pause_timeout_s: float
    rules_before: dict[str, str]
    since: float
    status: str = "PENDING"
    stage: str = ""
    reason: str = ""
    hook: dict[str, Any] | None = None
    hook_answered_at: float | None = None
    strategy: str = "BLUE_GREEN"
    # CANARY / LINEAR: (seconds into the production shift, percent on the new revision)
    schedule: tuple[tuple[float, float], ...] = ()
    applied: int = 0
    weights: list[float] = field(default_factory=list)  # every share production was given


@dataclass
class _SimRolling:
    """An ECS rolling deployment (``UpdateService`` of a service that is not ecs-native)."""

    arn: str
    service: str
    source_td: str
    target_td: str
    alarms: tuple[str, ...]
    alarm_rollback: bool
    breaker_rollback: bool
    since: float
    status: str = "IN_PROGRESS"
    steady_at: float | None = None
    triggered: tuple[str, ...] = ()
    breaker: bool = False
    reason: str = ""
    rollback_reason: str = ""
    rollback_at: float | None = None


@dataclass
class EcsSimulator:
    """Runs the tasks moto only records (see the module docstring)."""

    session: AwsSession
    clock: Clock
    cluster: str
    start_delay_s: float = 2.0
    health_delay_s: float = 2.0
    requests_per_minute: int = 600
    tasks: dict[str, list[_SimTask]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    # ecs-native: the services ECS's blue/green controller (simulated) deploys
    native_services: tuple[str, ...] = ()
    stage_s: float = 2.0
    circuit_breaker_s: float = 30.0
    deployments: dict[str, _SimDeployment] = field(default_factory=dict)
    native_calls: list[tuple[str, str]] = field(default_factory=list)  # (operation, detail)
    # rolling deployments of the other services, with the alarms ECS watches for them
    rollings: dict[str, _SimRolling] = field(default_factory=dict)
    rolling_bake_s: float = 10.0  # ECS computes it from the alarms; a fixed stand-in here
    # The test plays CloudWatch for the alarms (moto never evaluates them): called at every
    # look at a running rolling deployment, it may ``set_alarm_state`` on moto.
    on_rollout: Any = None
    # every UpdateService request as sent (moto drops deploymentConfiguration)
    update_requests: list[dict[str, Any]] = field(default_factory=list)
    # requests the stand-in prober delivered, by target group ARN (counted by CloudWatch)
    served: dict[str, int] = field(default_factory=dict)
    _seq: int = 0
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        # A client of its own, unhooked, to read moto's state.
        raw = boto3.session.Session(region_name=REGION)
        endpoint = self.session.settings.resolved_endpoint()
        self._ecs = raw.client("ecs", endpoint_url=endpoint)
        self._elb = raw.client("elbv2", endpoint_url=endpoint)
        self._cw = raw.client("cloudwatch", endpoint_url=endpoint)
        self._validator = ParamValidator()

    def install(self) -> EcsSimulator:
        native_ops = (
            "ListServiceDeployments",
            "DescribeServiceDeployments",
            "StopServiceDeployment",
            "ContinueServiceDeployment",
        )
        for service, names in (
            ("ecs", ("ListTasks", "DescribeTasks", *native_ops)),
            ("elbv2", ("DescribeTargetHealth",)),
            ("cloudwatch", ("GetMetricData",)),
        ):
            client = self.session.client(service)
            sid = client.meta.service_model.service_id.hyphenize()
            for op in names:
                client.meta.events.register(f"before-parameter-build.{sid}.{op}", _keep_params)
                client.meta.events.register(f"before-call.{sid}.{op}", self._answer)
        ecs = self.session.client("ecs")
        ecs.meta.events.register("before-parameter-build.ecs.UpdateService", self._before_update)
        ecs.meta.events.register("after-call.ecs.UpdateService", self._after_update)
        if self.native_services:
            self._seed_native()
        return self

    # ---------------------------------------------------------------- state
    def _task_env(self, td_arn: str) -> dict[str, str]:
        td = self._ecs.describe_task_definition(taskDefinition=td_arn)["taskDefinition"]
        env = td["containerDefinitions"][0].get("environment", [])
        return {e["name"]: e["value"] for e in env}

    def _services(self) -> list[dict[str, Any]]:
        arns = self._ecs.list_services(cluster=self.cluster).get("serviceArns", [])
        if not arns:
            return []
        return list(self._ecs.describe_services(cluster=self.cluster, services=arns)["services"])

    def _reconcile(self) -> None:
        now = self.clock.monotonic()
        with self._lock:
            self._advance_native(now)
            self._advance_rolling(now)
            for svc in self._services():
                name = svc["serviceName"]
                if name in self.native_services:
                    continue  # the blue/green controller below runs its tasks
                live = self.tasks.setdefault(name, [])
                td = svc["taskDefinition"]
                desired = int(svc["desiredCount"]) if svc.get("status") == "ACTIVE" else 0
                env = self._task_env(td) if desired else {}
                crash = env.get("FAULT_CRASH_ON_START") == "1"
                current = [t for t in live if t.task_definition_arn == td and t.stopped_at is None]
                for extra in current[desired:]:
                    extra.stopped_at = now
                current = current[:desired]
                new_healthy = sum(1 for t in current if self._healthy(t, now))
                old = [t for t in live if t.task_definition_arn != td and t.stopped_at is None]
                keep_old = max(0, desired - new_healthy)
                for t in old[keep_old:]:
                    t.stopped_at = now
                if crash:
                    for t in current:
                        if now - t.wanted_at >= self.start_delay_s:
                            t.stopped_at = now
                    current = [t for t in current if t.stopped_at is None]
                while len(current) < desired:
                    self._seq += 1
                    task = _SimTask(
                        arn=f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{self.cluster}/{self._seq:032x}",
                        task_definition_arn=td,
                        wanted_at=now,
                        ip=f"10.20.0.{10 + self._seq % 240}",
                    )
                    live.append(task)
                    current.append(task)

    def _running(self, t: _SimTask, now: float) -> bool:
        return t.stopped_at is None and now - t.wanted_at >= self.start_delay_s

    def _healthy(self, t: _SimTask, now: float) -> bool:
        if (
            not self._running(t, now)
            or now - t.wanted_at < self.start_delay_s + self.health_delay_s
        ):
            return False
        return self._task_env(t.task_definition_arn).get("FAULT_HEALTH_FAIL") != "1"

    def _tasks_of_tg(self, tg_arn: str) -> list[_SimTask]:
        out: list[_SimTask] = []
        for name in self.native_services:
            out += [t for t in self.tasks.get(name, []) if t.tg_arn == tg_arn]
        for svc in self._services():
            if svc["serviceName"] in self.native_services:
                continue
            lbs = svc.get("loadBalancers") or []
            if any(lb.get("targetGroupArn") == tg_arn for lb in lbs):
                out += self.tasks.get(svc["serviceName"], [])
        return out

    # ---------------------------------------------------------------- answers
    def _answer(self, model: Any, context: Mapping[str, Any], **_: Any) -> tuple[Any, Any]:
        self._reconcile()
        op = model.name
        self.calls.append(op)
        request = context.get("simulated_params", {})
        if op in _NATIVE_ANSWERS:
            response = getattr(self, _NATIVE_ANSWERS[op])(request)
        elif op == "ListTasks":
            response = self._list_tasks(request)
        elif op == "DescribeTasks":
            response = self._describe_tasks(request)
        elif op == "DescribeTargetHealth":
            response = self._target_health(request["TargetGroupArn"])
        else:
            response = self._metric_data(request)
        report = self._validator.validate(response, model.output_shape)
        if report.has_errors():
            raise ParamValidationError(report=report.generate_report())
        return AWSResponse("", 200, {}, None), {**response, "ResponseMetadata": {}}

    def _list_tasks(self, body: Mapping[str, Any]) -> dict[str, Any]:
        now = self.clock.monotonic()
        name = str(body.get("serviceName", "")).rsplit("/", 1)[-1]
        status = body.get("desiredStatus", "RUNNING")
        tasks = self.tasks.get(name, [])
        if status == "STOPPED":
            chosen = [t for t in tasks if t.stopped_at is not None and now - t.stopped_at < 60]
        else:
            chosen = [t for t in tasks if t.stopped_at is None]
        return {"taskArns": [t.arn for t in chosen]}

    def _describe_tasks(self, body: Mapping[str, Any]) -> dict[str, Any]:
        now = self.clock.monotonic()
        wanted = set(body.get("tasks", []))
        out = []
        base = datetime(2026, 1, 1)
        for tasks in self.tasks.values():
            for t in tasks:
                if t.arn not in wanted:
                    continue
                if t.stopped_at is not None:
                    last = "STOPPED"
                elif self._running(t, now):
                    last = "RUNNING"
                else:
                    last = "PROVISIONING"
                health = "UNKNOWN"
                if last == "RUNNING":
                    env = self._task_env(t.task_definition_arn)
                    health = "UNHEALTHY" if env.get("FAULT_HEALTH_FAIL") == "1" else "HEALTHY"
                entry: dict[str, Any] = {
                    "taskArn": t.arn,
                    "taskDefinitionArn": t.task_definition_arn,
                    "lastStatus": last,
                    "desiredStatus": "STOPPED" if t.stopped_at is not None else "RUNNING",
                    "healthStatus": health,
                    "launchType": "FARGATE",
                    "startedAt": base + timedelta(seconds=t.wanted_at),
                }
                if t.stopped_at is not None:
                    entry["stoppedReason"] = "Scaling activity initiated by deployment"
                out.append(entry)
        return {"tasks": out, "failures": []}

    def _target_health(self, tg_arn: str) -> dict[str, Any]:
        now = self.clock.monotonic()
        descriptions = []
        for t in self._tasks_of_tg(tg_arn):
            if t.stopped_at is not None or not self._running(t, now):
                continue
            if self._healthy(t, now):
                state = {"State": "healthy"}
            elif now - t.wanted_at < self.start_delay_s + self.health_delay_s:
                state = {"State": "initial", "Reason": "Elb.RegistrationInProgress"}
            else:
                state = {
                    "State": "unhealthy",
                    "Reason": "Target.ResponseCodeMismatch",
                    "Description": "Health checks failed with these codes: [503]",
                }
            descriptions.append(
                {
                    "Target": {"Id": t.ip, "Port": 3000},
                    "HealthCheckPort": "3000",
                    "TargetHealth": state,
                }
            )
        return {"TargetHealthDescriptions": descriptions}

    def _metric_data(self, request: Mapping[str, Any]) -> dict[str, Any]:
        queries = request.get("MetricDataQueries", [])
        results = []
        end = self.clock.now()
        stamp = end.replace(second=0, microsecond=0)
        for q in queries:
            stat = q["MetricStat"]
            metric = stat["Metric"]
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            value = self._value(metric["MetricName"], stat["Stat"], dims)
            results.append(
                {
                    "Id": q["Id"],
                    "Label": metric["MetricName"],
                    "Timestamps": [stamp] if value is not None else [],
                    "Values": [value] if value is not None else [],
                    "StatusCode": "Complete",
                }
            )
        return {"MetricDataResults": results, "Messages": []}

    def _value(self, metric: str, stat: str, dims: Mapping[str, str]) -> float | None:
        now = self.clock.monotonic()
        if "TargetGroup" in dims:
            suffix = dims["TargetGroup"]
            tg_arn = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:{suffix}"
            tasks = [t for t in self._tasks_of_tg(tg_arn) if self._healthy(t, now)]
            if not tasks:
                return None
            env = self._task_env(tasks[0].task_definition_arn)
            rate = float(env.get("FAULT_ERROR_RATE", "0"))
            later = float(env.get("FAULT_DEGRADE_AFTER_S", "0") or 0)
            if later and now - min(t.wanted_at for t in tasks) < later:
                rate = 0.0  # the sample service's fault that begins some time after start
            requests = float(self.requests_per_minute + self.served.get(tg_arn, 0))
            if metric in ("RequestCount", "HTTPCode_Target_5XX_Count") and requests == 0:
                return None  # the ALB publishes no request metric for a quiet group
            if metric == "RequestCount":
                return requests
            if metric == "HTTPCode_Target_5XX_Count":
                return requests * rate
            if metric == "TargetResponseTime":
                return float(env.get("FAULT_LATENCY_MS", "20")) / 1000.0
            if metric == "HealthyHostCount":
                return float(len(tasks))
            if metric == "UnHealthyHostCount":
                return 0.0
        if metric in ("CPUUtilization", "MemoryUtilization"):
            return 12.5
        return None

    # ---------------------------------------------------------------- ECS blue/green
    def _new_task(self, service: str, td_arn: str, tg_arn: str, wanted_at: float) -> _SimTask:
        self._seq += 1
        task = _SimTask(
            arn=f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{self.cluster}/{self._seq:032x}",
            task_definition_arn=td_arn,
            wanted_at=wanted_at,
            ip=f"10.20.0.{10 + self._seq % 240}",
            tg_arn=tg_arn,
        )
        self.tasks.setdefault(service, []).append(task)
        return task

    def _seed_native(self) -> None:
        """The tasks Terraform's bootstrap revision runs (healthy before the first deploy)."""
        long_ago = self.clock.monotonic() - (self.start_delay_s + self.health_delay_s)
        for svc in self._services():
            name = svc["serviceName"]
            if name not in self.native_services or self.tasks.get(name):
                continue
            tg = (svc.get("loadBalancers") or [{}])[0].get("targetGroupArn", "")
            for _ in range(int(svc["desiredCount"])):
                self._new_task(name, svc["taskDefinition"], tg, long_ago)

    def _td_arn(self, ref: str) -> str:
        return str(
            self._ecs.describe_task_definition(taskDefinition=ref)["taskDefinition"][
                "taskDefinitionArn"
            ]
        )

    def _rule_target(self, rule_arn: str) -> str:
        rule = self._elb.describe_rules(RuleArns=[rule_arn])["Rules"][0]
        return _forward_target(rule.get("Actions", []))

    def _shift(self, rule_arn: str, to_tg: str, other_tg: str) -> None:
        """What ECS does to a listener rule: all weight to ``to_tg``."""
        self._elb.modify_rule(
            RuleArn=rule_arn,
            Actions=[
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {"TargetGroupArn": to_tg, "Weight": 100},
                            {"TargetGroupArn": other_tg, "Weight": 0},
                        ]
                    },
                }
            ],
        )

    def _before_update(self, params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["simulated_params"] = dict(params)
        name = str(params.get("service", "")).rsplit("/", 1)[-1]
        if name in self.native_services or "taskDefinition" not in params:
            return
        found = self._ecs.describe_services(cluster=self.cluster, services=[name])["services"]
        context["simulated_source_td"] = found[0]["taskDefinition"] if found else ""

    def _after_update(self, context: Mapping[str, Any], **_: Any) -> None:
        params = context.get("simulated_params", {})
        self.update_requests.append(dict(params))
        name = str(params.get("service", "")).rsplit("/", 1)[-1]
        config = params.get("deploymentConfiguration") or {}
        if name not in self.native_services:
            self._start_rolling(name, params, str(context.get("simulated_source_td", "")))
            return
        if config.get("strategy") not in ("BLUE_GREEN", "CANARY", "LINEAR"):
            return
        with self._lock:
            lb = params["loadBalancers"][0]
            advanced = lb["advancedConfiguration"]
            now = self.clock.monotonic()
            live = [t for t in self.tasks.get(name, []) if t.stopped_at is None]
            seq = len(self.deployments) + 1
            arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/{self.cluster}/{name}/d{seq}"
            hooks = [h for h in config.get("lifecycleHooks", []) if h.get("targetType") == "PAUSE"]
            timeout = min(
                (h["timeoutConfiguration"]["timeoutInMinutes"] * 60.0 for h in hooks),
                default=0.0,
            )
            rules = (advanced["productionListenerRule"], advanced["testListenerRule"])
            self.deployments[arn] = _SimDeployment(
                arn=arn,
                service=name,
                source_td=live[0].task_definition_arn if live else "",
                target_td=self._td_arn(str(params["taskDefinition"])),
                source_tg=lb["targetGroupArn"],
                target_tg=advanced["alternateTargetGroupArn"],
                prod_rule=rules[0],
                test_rule=rules[1],
                bake_s=float(config.get("bakeTimeInMinutes", 0)) * 60.0,
                pause_stages=frozenset(s for h in hooks for s in h["lifecycleStages"]),
                pause_timeout_s=timeout,
                rules_before={r: self._rule_target(r) for r in rules},
                since=now,
                strategy=str(config["strategy"]),
                schedule=_shift_schedule(config),
            )
            self.native_calls.append(("UpdateService", config["strategy"]))

    def _enter(self, d: _SimDeployment, stage: str, at: float) -> None:
        d.stage, d.since = stage, at
        if stage == "SCALE_UP":
            desired = int(
                self._ecs.describe_services(cluster=self.cluster, services=[d.service])["services"][
                    0
                ]["desiredCount"]
            )
            for _ in range(desired):
                self._new_task(d.service, d.target_td, d.target_tg, at)
        elif stage == "TEST_TRAFFIC_SHIFT":
            self._shift(d.test_rule, d.target_tg, d.source_tg)
        elif stage == "POST_TEST_TRAFFIC_SHIFT" and stage in d.pause_stages:
            d.hook = {
                "hookId": f"ecs-pause-{d.arn.rsplit('/', 1)[-1]}",
                "targetType": "PAUSE",
                "status": "AWAITING_ACTION",
                "expiresAt": datetime(2026, 1, 1) + timedelta(seconds=at + d.pause_timeout_s),
                "timeoutAction": "ROLLBACK",
            }
            d.hook_answered_at = None
        elif stage == "PRODUCTION_TRAFFIC_SHIFT":
            if d.schedule:
                d.applied = 0
                self._apply_schedule(d, at)
            else:
                self._shift(d.prod_rule, d.target_tg, d.source_tg)
                d.weights.append(100.0)
        elif stage == "CLEAN_UP":
            for t in self.tasks.get(d.service, []):
                if t.task_definition_arn != d.target_td and t.stopped_at is None:
                    t.stopped_at = at

    def _apply_schedule(self, d: _SimDeployment, now: float) -> None:
        """CANARY / LINEAR: each share of production whose time has come, in order."""
        while d.applied < len(d.schedule) and d.since + d.schedule[d.applied][0] <= now:
            percent = d.schedule[d.applied][1]
            self._elb.modify_rule(
                RuleArn=d.prod_rule,
                Actions=[
                    {
                        "Type": "forward",
                        "ForwardConfig": {
                            "TargetGroups": [
                                {"TargetGroupArn": d.target_tg, "Weight": round(percent)},
                                {"TargetGroupArn": d.source_tg, "Weight": 100 - round(percent)},
                            ]
                        },
                    }
                ],
            )
            d.weights.append(percent)
            d.applied += 1

    def _begin_rollback(self, d: _SimDeployment, at: float, reason: str) -> None:
        d.status, d.since, d.reason = "ROLLBACK_IN_PROGRESS", at, reason
        for rule, tg in d.rules_before.items():  # production first, as ECS does
            self._shift(rule, tg, d.target_tg if tg != d.target_tg else d.source_tg)

    def _advance_native(self, now: float) -> None:
        for d in self.deployments.values():
            self._advance(d, now)

    def _advance(self, d: _SimDeployment, now: float) -> None:
        while True:
            if d.status == "PENDING":
                if now - d.since < self.stage_s:
                    return
                d.status = "IN_PROGRESS"
                self._enter(d, NATIVE_STAGES[0], d.since + self.stage_s)
                continue
            if d.status == "ROLLBACK_IN_PROGRESS":
                if now - d.since < self.stage_s:
                    return
                for t in self.tasks.get(d.service, []):
                    if t.task_definition_arn == d.target_td and t.stopped_at is None:
                        t.stopped_at = d.since + self.stage_s
                if d.source_td:
                    self._ecs.update_service(
                        cluster=self.cluster, service=d.service, taskDefinition=d.source_td
                    )
                d.status = "ROLLBACK_SUCCESSFUL"
                return
            if d.status != "IN_PROGRESS":
                return
            end: float | None = d.since + self.stage_s
            if d.stage == "SCALE_UP":
                env = self._task_env(d.target_td)
                if env.get("FAULT_HEALTH_FAIL") == "1" or env.get("FAULT_CRASH_ON_START") == "1":
                    if now - d.since >= self.circuit_breaker_s:
                        self._begin_rollback(
                            d,
                            d.since + self.circuit_breaker_s,
                            "ECS deployment circuit breaker: tasks failed to start or turn healthy",
                        )
                        continue
                    return
                end = d.since + max(self.stage_s, self.start_delay_s + self.health_delay_s)
            elif d.stage == "POST_TEST_TRAFFIC_SHIFT" and d.hook is not None:
                if d.hook["status"] == "AWAITING_ACTION":
                    expires = d.since + d.pause_timeout_s
                    if now >= expires:
                        d.hook["status"] = "TIMED_OUT"
                        self._begin_rollback(d, expires, "the pause hook timed out")
                        continue
                    return
                end = d.hook_answered_at
            elif d.stage == "PRODUCTION_TRAFFIC_SHIFT" and d.schedule:
                self._apply_schedule(d, now)
                if d.applied < len(d.schedule):
                    return
                end = d.since + d.schedule[-1][0] + self.stage_s
            elif d.stage == "BAKE_TIME":
                end = d.since + d.bake_s
            if end is None or now < end:
                return
            if d.stage == "CLEAN_UP":
                d.status = "SUCCESSFUL"
                return
            self._enter(d, NATIVE_STAGES[NATIVE_STAGES.index(d.stage) + 1], end)

    # ---------------------------------------------------------------- ECS rolling
    def _start_rolling(self, name: str, params: Mapping[str, Any], source_td: str) -> None:
        """ECS opens a rolling deployment when the task definition changes."""
        if "taskDefinition" not in params or not source_td:
            return
        target = self._td_arn(str(params["taskDefinition"]))
        if _td(target) == _td(source_td):
            return
        config = params.get("deploymentConfiguration") or {}
        alarms = config.get("alarms") or {}
        breaker = config.get("deploymentCircuitBreaker") or {}
        with self._lock:
            now = self.clock.monotonic()
            for d in self.rollings.values():
                if d.service == name and d.status == "IN_PROGRESS":
                    d.status = "STOPPED"  # a newer deployment supersedes it
            seq = len(self.deployments) + len(self.rollings) + 1
            arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/{self.cluster}/{name}/r{seq}"
            self.rollings[arn] = _SimRolling(
                arn=arn,
                service=name,
                source_td=source_td,
                target_td=target,
                alarms=tuple(alarms.get("alarmNames") or ()) if alarms.get("enable") else (),
                alarm_rollback=bool(alarms.get("rollback")),
                breaker_rollback=bool(breaker.get("enable") and breaker.get("rollback")),
                since=now,
            )

    def _alarms_in_alarm(self, names: tuple[str, ...]) -> tuple[str, ...]:
        if not names:
            return ()
        found = self._cw.describe_alarms(AlarmNames=list(names))["MetricAlarms"]
        return tuple(a["AlarmName"] for a in found if a.get("StateValue") == "ALARM")

    def _roll_back(self, d: _SimRolling, now: float, reason: str) -> None:
        d.status, d.rollback_at, d.rollback_reason = "ROLLBACK_IN_PROGRESS", now, reason
        self._ecs.update_service(
            cluster=self.cluster, service=d.service, taskDefinition=d.source_td
        )

    def _advance_rolling(self, now: float) -> None:
        for d in list(self.rollings.values()):
            if d.status not in ("IN_PROGRESS", "ROLLBACK_IN_PROGRESS"):
                continue
            svc = self._ecs.describe_services(cluster=self.cluster, services=[d.service])
            desired = int(svc["services"][0]["desiredCount"]) if svc["services"] else 0
            tasks = [t for t in self.tasks.get(d.service, []) if t.stopped_at is None]
            source = [t for t in tasks if _td(t.task_definition_arn) == _td(d.source_td)]
            target = [t for t in tasks if _td(t.task_definition_arn) == _td(d.target_td)]
            if d.status == "ROLLBACK_IN_PROGRESS":
                back = sum(1 for t in source if self._healthy(t, now))
                if back >= desired and len(source) == len(tasks):
                    d.status = "ROLLBACK_SUCCESSFUL"
                continue
            if self.on_rollout is not None:
                self.on_rollout(self, d)
            fired = self._alarms_in_alarm(d.alarms)
            if fired:
                d.triggered = fired
                if d.alarm_rollback:
                    self._roll_back(
                        d, now, f"CloudWatch alarm(s) {', '.join(fired)} in ALARM state"
                    )
                else:
                    d.status, d.reason = "STOPPED", "alarm in ALARM state"
                continue
            env = self._task_env(d.target_td)
            if env.get("FAULT_HEALTH_FAIL") == "1" or env.get("FAULT_CRASH_ON_START") == "1":
                if now - d.since >= self.circuit_breaker_s:
                    d.breaker = True
                    if d.breaker_rollback:
                        self._roll_back(d, now, "ECS deployment circuit breaker: tasks failed")
                    else:
                        d.status = "STOPPED"
                continue
            new = sum(1 for t in target if self._healthy(t, now))
            if new >= desired and len(target) == len(tasks):
                d.steady_at = d.steady_at if d.steady_at is not None else now
                if now - d.steady_at >= self.rolling_bake_s:
                    d.status = "SUCCESSFUL"

    def _rolling_json(self, d: _SimRolling) -> dict[str, Any]:
        base = datetime(2026, 1, 1)
        monitor = (
            "TRIGGERED"
            if d.triggered
            else ("MONITORING_COMPLETE" if d.status == "SUCCESSFUL" else "MONITORING")
        )
        out: dict[str, Any] = {
            "serviceDeploymentArn": d.arn,
            "serviceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{self.cluster}/{d.service}",
            "clusterArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{self.cluster}",
            "status": d.status,
            "targetServiceRevision": {"arn": f"{d.arn}/revision"},
            "deploymentCircuitBreaker": {
                "status": "TRIGGERED" if d.breaker else "MONITORING",
                "failureCount": 3 if d.breaker else 0,
                "threshold": 3,
            },
        }
        if d.alarms:
            out["alarms"] = {
                "status": monitor,
                "alarmNames": list(d.alarms),
                "triggeredAlarmNames": list(d.triggered),
            }
        if d.reason:
            out["statusReason"] = d.reason
        if d.rollback_at is not None:
            out["rollback"] = {
                "reason": d.rollback_reason,
                "startedAt": base + timedelta(seconds=d.rollback_at),
                "serviceRevisionArn": f"{d.arn}/source-revision",
            }
        return out

    def _deployment_json(self, d: _SimDeployment) -> dict[str, Any]:
        out: dict[str, Any] = {
            "serviceDeploymentArn": d.arn,
            "serviceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{self.cluster}/{d.service}",
            "clusterArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{self.cluster}",
            "status": d.status,
            "targetServiceRevision": {"arn": f"{d.arn}/revision"},
        }
        if d.stage:
            out["lifecycleStage"] = d.stage
        if d.reason:
            out["statusReason"] = d.reason
        if d.hook is not None:
            out["lifecycleHookDetails"] = [dict(d.hook)]
        return out

    def _find(self, arn: str, op: str) -> _SimDeployment:
        found = self.deployments.get(arn)
        if found is None:
            raise ClientError(
                {"Error": {"Code": "ServiceDeploymentNotFoundException", "Message": arn}}, op
            )
        return found

    def _list_deployments(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = str(body.get("service", "")).rsplit("/", 1)[-1]
        wanted = set(body.get("status") or [])
        every: list[_SimDeployment | _SimRolling] = [
            *self.deployments.values(),
            *self.rollings.values(),
        ]
        listed = [
            {
                "serviceDeploymentArn": d.arn,
                "serviceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{self.cluster}/{name}",
                "status": d.status,
            }
            for d in reversed(every)
            if d.service == name and (not wanted or d.status in wanted)
        ]
        return {"serviceDeployments": listed}

    def _describe_deployments(self, body: Mapping[str, Any]) -> dict[str, Any]:
        found = [
            self._deployment_json(self.deployments[a])
            if a in self.deployments
            else self._rolling_json(self.rollings[a])
            for a in body.get("serviceDeploymentArns", [])
            if a in self.deployments or a in self.rollings
        ]
        return {"serviceDeployments": found, "failures": []}

    def _stop_deployment(self, body: Mapping[str, Any]) -> dict[str, Any]:
        d = self._find(str(body["serviceDeploymentArn"]), "StopServiceDeployment")
        kind = str(body.get("stopType", "ABORT"))
        self.native_calls.append(("StopServiceDeployment", kind))
        if d.status not in ("PENDING", "IN_PROGRESS"):
            raise ClientError(
                {"Error": {"Code": "ConflictException", "Message": f"{d.arn} is {d.status}"}},
                "StopServiceDeployment",
            )
        self._begin_rollback(d, self.clock.monotonic(), "stopped with rollback by the caller")
        return {"serviceDeploymentArn": d.arn}

    def _continue_deployment(self, body: Mapping[str, Any]) -> dict[str, Any]:
        d = self._find(str(body["serviceDeploymentArn"]), "ContinueServiceDeployment")
        action = str(body.get("action", "CONTINUE"))
        self.native_calls.append(("ContinueServiceDeployment", action))
        hook = d.hook
        if hook is None or hook["hookId"] != body["hookId"] or hook["status"] != "AWAITING_ACTION":
            raise ClientError(
                {"Error": {"Code": "InvalidParameterException", "Message": "no such hook"}},
                "ContinueServiceDeployment",
            )
        now = self.clock.monotonic()
        hook["status"] = "SUCCEEDED"
        d.hook_answered_at = now
        if action == "ROLLBACK":
            self._begin_rollback(d, now, "rolled back at the pause hook")
        return {"serviceDeploymentArn": d.arn}

    # ---------------------------------------------------------------- a prober through the ALB
    def prober(self, world: World) -> SimProber:
        return SimProber(self, world)


_NATIVE_ANSWERS = {
    "ListServiceDeployments": "_list_deployments",
    "DescribeServiceDeployments": "_describe_deployments",
    "StopServiceDeployment": "_stop_deployment",
    "ContinueServiceDeployment": "_continue_deployment",
}


def _shift_schedule(config: Mapping[str, Any]) -> tuple[tuple[float, float], ...]:
    """When ECS gives the new revision each share of production during the production
    traffic shift: a canary's share, then all after its bake; linear steps, one bake apart."""
    if config.get("strategy") == "CANARY":
        canary = config.get("canaryConfiguration") or {}
        bake = float(canary.get("canaryBakeTimeInMinutes", 10)) * 60.0
        return ((0.0, float(canary.get("canaryPercent", 5.0))), (bake, 100.0))
    if config.get("strategy") == "LINEAR":
        linear = config.get("linearConfiguration") or {}
        step = float(linear.get("stepPercent", 10.0))
        bake = float(linear.get("stepBakeTimeInMinutes", 6)) * 60.0
        out: list[tuple[float, float]] = []
        share = 0.0
        while share < 100.0:
            share = min(100.0, share + step)
            out.append((len(out) * bake, share))
        return tuple(out)
    return ()


def _td(ref: str) -> str:
    """``family:revision`` of a task definition ARN or reference (moto keeps what it was
    given)."""
    return ref.rsplit("/", 1)[-1]


def _forward_target(actions: list[dict[str, Any]]) -> str:
    """The target group a rule's or listener's forward action sends most traffic to."""
    best, weight = "", -1
    for action in actions:
        if action.get("Type") != "forward":
            continue
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
        if not groups and action.get("TargetGroupArn"):
            groups = [{"TargetGroupArn": action["TargetGroupArn"], "Weight": 1}]
        for g in groups:
            if int(g.get("Weight", 1)) > weight:
                best, weight = str(g["TargetGroupArn"]), int(g.get("Weight", 1))
    return best


def _keep_params(params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
    """Hand the caller's parameters to the ``before-call`` answer (it sees only the
    serialized request)."""
    context["simulated_params"] = dict(params)


@dataclass
class SimProber:
    """HTTP through the ALB, answered from the simulator: a listener whose target group has a
    healthy task answers ``/health`` 200, 503 otherwise; a version with
    ``FAULT_ERROR_RATE`` = 1 answers 500 everywhere. Only a real ALB can show real HTTP."""

    sim: EcsSimulator
    world: World

    def get(self, url: str, *, timeout_s: float) -> ProbeResult:
        port = int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        arn = next(
            (
                a
                for n, a in self.world.resources.listeners.items()
                if (n.endswith("-prod") and port == self.world.prod_port)
                or (n.endswith("-test") and port == self.world.test_port)
            ),
            None,
        )
        if arn is None:  # no listener on that port: nothing answers
            return ProbeResult(url=url, status=0, elapsed_ms=1.0, error="connection refused")
        now = self.sim.clock.monotonic()
        self.sim._reconcile()
        listener = self.sim._elb.describe_listeners(ListenerArns=[arn])["Listeners"][0]
        tg = _forward_target(listener["DefaultActions"])
        rules = self.sim._elb.describe_rules(ListenerArn=arn)["Rules"]
        for rule in rules:  # ecs-native: the rule ECS shifts wins over the default action
            if not rule.get("IsDefault") and _forward_target(rule.get("Actions", [])):
                tg = _forward_target(rule["Actions"])
        healthy = [t for t in self.sim._tasks_of_tg(tg) if self.sim._healthy(t, now)]
        if not healthy:
            return ProbeResult(url=url, status=503, elapsed_ms=1.0)
        env = self.sim._task_env(healthy[0].task_definition_arn)
        status = 500 if float(env.get("FAULT_ERROR_RATE", "0")) >= 1.0 else 200
        self.sim.served[tg] = self.sim.served.get(tg, 0) + 1
        return ProbeResult(url=url, status=status, elapsed_ms=1.0)


def aws_environment(monkeypatch: Any, server: MotoServer) -> None:
    """Dummy credentials and the stand-in's endpoint, the way a user points the CLI at it."""
    server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
