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
from botocore.exceptions import ParamValidationError
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
) -> World:
    """What ``infrastructure/`` builds for one service, in moto: a VPC with two subnets, an
    ALB with a production (80 -> blue) and a test (8080 -> green) listener, the two colours'
    target groups, the cluster, and the alert topics. ``terraform_owned=False`` leaves the
    target groups and services to deployops (looked up, created and deleted by name)."""
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
    resources = AwsResources(
        cluster=stack,
        listeners={f"{service}-prod": prod, f"{service}-test": test},
        target_groups={f"{service}-blue": tgs["blue"], f"{service}-green": tgs["green"]}
        if terraform_owned
        else {},
        services={f"{service}-blue": f"{stack}-blue", f"{service}-green": f"{stack}-green"}
        if terraform_owned
        else {},
        native_services={service: stack},
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
    _seq: int = 0
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        # A client of its own, unhooked, to read moto's state.
        raw = boto3.session.Session(region_name=REGION)
        endpoint = self.session.settings.resolved_endpoint()
        self._ecs = raw.client("ecs", endpoint_url=endpoint)
        self._elb = raw.client("elbv2", endpoint_url=endpoint)
        self._validator = ParamValidator()

    def install(self) -> EcsSimulator:
        for service, names in (
            ("ecs", ("ListTasks", "DescribeTasks")),
            ("elbv2", ("DescribeTargetHealth",)),
            ("cloudwatch", ("GetMetricData",)),
        ):
            client = self.session.client(service)
            sid = client.meta.service_model.service_id.hyphenize()
            for op in names:
                client.meta.events.register(f"before-parameter-build.{sid}.{op}", _keep_params)
                client.meta.events.register(f"before-call.{sid}.{op}", self._answer)
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
            for svc in self._services():
                name = svc["serviceName"]
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
        for svc in self._services():
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
        if op == "ListTasks":
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
            requests = float(self.requests_per_minute)
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

    # ---------------------------------------------------------------- a prober through the ALB
    def prober(self, world: World) -> SimProber:
        return SimProber(self, world)


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
            a
            for n, a in self.world.resources.listeners.items()
            if (n.endswith("-prod") and port == self.world.prod_port)
            or (n.endswith("-test") and port == self.world.test_port)
        )
        listener = self.sim._elb.describe_listeners(ListenerArns=[arn])["Listeners"][0]
        tg = listener["DefaultActions"][0]["TargetGroupArn"]
        now = self.sim.clock.monotonic()
        self.sim._reconcile()
        healthy = [t for t in self.sim._tasks_of_tg(tg) if self.sim._healthy(t, now)]
        if not healthy:
            return ProbeResult(url=url, status=503, elapsed_ms=1.0)
        env = self.sim._task_env(healthy[0].task_definition_arn)
        status = 500 if float(env.get("FAULT_ERROR_RATE", "0")) >= 1.0 else 200
        return ProbeResult(url=url, status=status, elapsed_ms=1.0)


def aws_environment(monkeypatch: Any, server: MotoServer) -> None:
    """Dummy credentials and the stand-in's endpoint, the way a user points the CLI at it."""
    server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
