"""What moto does not simulate, driven with ``botocore.stub.Stubber`` (every canned response
and every expected request is checked against the AWS model): deploymentConfiguration,
target-health transitions, p99 from CloudWatch, and the error mapping.

No network: the clients point at a closed loopback port and the Stubber answers first.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import NoCredentialsError
from botocore.stub import ANY, Stubber

from deployops.clock import VirtualClock
from deployops.domain.model import MetricName, MetricQuery, Statistic, TargetState
from deployops.drivers.aws import AwsResources, CloudWatchMetrics, EcsCompute, ElbTraffic
from deployops.drivers.aws._errors import map_aws_errors
from deployops.errors import DriverError, NotFoundError, PlatformUnavailableError

ELB = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012"
TG = f"{ELB}:targetgroup/shop-green/0123456789abcdef"
LB = f"{ELB}:loadbalancer/app/shop/50dc6c495c0c9188"
LISTENER = f"{ELB}:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2"
RES = AwsResources(
    cluster="shop",
    listeners={"web-prod": LISTENER},
    target_groups={"web-green": TG},
    services={"web-green": "shop-green"},
    subnets=("subnet-1",),
    security_groups=("sg-1",),
)


def _client(service: str) -> Any:
    session = botocore.session.get_session()
    return session.create_client(
        service,
        region_name="ap-northeast-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1, "mode": "adaptive"}),
    )


@pytest.fixture
def ecs() -> Iterator[tuple[EcsCompute, Stubber]]:
    client = _client("ecs")
    with Stubber(client) as stub:
        yield (
            EcsCompute(
                client=client,
                resources=RES,
                clock=VirtualClock(),
                target_group_arn=lambda name: TG,
                alarm_names=("shop-HighErrorRate",),
            ),
            stub,
        )
        stub.assert_no_pending_responses()


def test_services_get_the_rolling_settings_and_circuit_breaker(
    ecs: tuple[EcsCompute, Stubber],
) -> None:
    """IAC-4 / DEP-7: maximum 200 %, minimum healthy 100 %, circuit breaker with rollback and
    the RB-1 alarm armed; moto drops deploymentConfiguration, so the request is checked here.
    Real account only: ECS actually rolling back on a tripped breaker."""
    compute, stub = ecs
    stub.add_response("describe_services", {"services": [], "failures": []})
    td = {
        "family": "shop",
        "revision": 3,
        "containerDefinitions": [
            {"name": "app", "image": "repo/web:1.1.0", "portMappings": [{"containerPort": 3000}]}
        ],
    }
    stub.add_response(
        "describe_task_definition", {"taskDefinition": td}, {"taskDefinition": "shop:3"}
    )
    stub.add_response(
        "create_service",
        {"service": {"serviceName": "shop-green", "desiredCount": 4, "taskDefinition": "shop:3"}},
        {
            "cluster": "shop",
            "serviceName": "shop-green",
            "taskDefinition": "shop:3",
            "desiredCount": 4,
            "launchType": "FARGATE",
            "loadBalancers": [
                {"targetGroupArn": TG, "containerName": "app", "containerPort": 3000}
            ],
            "deploymentConfiguration": {
                "maximumPercent": 200,
                "minimumHealthyPercent": 100,
                "deploymentCircuitBreaker": {"enable": True, "rollback": True},
                "alarms": {"alarmNames": ["shop-HighErrorRate"], "enable": True, "rollback": True},
            },
            "healthCheckGracePeriodSeconds": 60,
            "enableECSManagedTags": True,
            "propagateTags": "SERVICE",
            "tags": ANY,
            "networkConfiguration": {
                "awsvpcConfiguration": {
                    "subnets": ["subnet-1"],
                    "securityGroups": ["sg-1"],
                    "assignPublicIp": "DISABLED",
                }
            },
        },
    )
    state = compute.create_service(
        "web-green", task_definition="shop:3", desired_count=4, target_group="web-green"
    )
    assert (state.name, state.desired, state.task_definition) == ("web-green", 4, "shop:3")


def test_tasks_progress_from_provisioning_to_healthy(ecs: tuple[EcsCompute, Stubber]) -> None:
    """A deployment advancing: PROVISIONING, then RUNNING but not yet HEALTHY, then
    HEALTHY; a task stopped by the circuit breaker carries its reason. Real account only:
    how long each stage takes."""
    compute, stub = ecs
    arn = "arn:aws:ecs:ap-northeast-1:123456789012:task/shop/0a1b"
    tdarn = "arn:aws:ecs:ap-northeast-1:123456789012:task-definition/shop:3"
    for last, health in (
        ("PROVISIONING", "UNKNOWN"),
        ("RUNNING", "UNHEALTHY"),
        ("RUNNING", "HEALTHY"),
    ):
        stub.add_response(
            "describe_services",
            {
                "services": [
                    {
                        "serviceName": "shop-green",
                        "status": "ACTIVE",
                        "desiredCount": 1,
                        "runningCount": 1,
                        "taskDefinition": tdarn,
                        "loadBalancers": [{"targetGroupArn": TG}],
                    }
                ]
            },
        )
        stub.add_response("list_tasks", {"taskArns": [arn]})
        stub.add_response("list_tasks", {"taskArns": []})
        stub.add_response(
            "describe_tasks",
            {
                "tasks": [
                    {
                        "taskArn": arn,
                        "taskDefinitionArn": tdarn,
                        "lastStatus": last,
                        "healthStatus": health,
                    }
                ]
            },
        )
    seen = []
    for _ in range(3):
        svc = compute.describe_service("web-green")
        assert svc is not None
        assert svc.target_group == "web-green"
        assert svc.tasks[0].task_definition == "shop:3"
        seen.append((svc.tasks[0].state.value, svc.healthy))
    assert seen == [("PENDING", 0), ("RUNNING", 0), ("RUNNING", 1)]


def test_target_health_transitions_map_to_target_states() -> None:
    """initial -> healthy, unhealthy with the ALB's reason, draining. moto reports every IP
    target healthy at once. Real account only: the health checker's timing."""
    client = _client("elbv2")
    traffic = ElbTraffic(client=client, resources=RES, clock=VirtualClock())
    group = {"TargetGroupArn": TG, "TargetGroupName": "shop-green", "HealthCheckPath": "/health"}
    with Stubber(client) as stub:
        for states in (
            [("initial", "Elb.RegistrationInProgress")],
            [("healthy", ""), ("unhealthy", "Target.ResponseCodeMismatch")],
            [("draining", "Target.DeregistrationInProgress")],
        ):
            stub.add_response("describe_target_groups", {"TargetGroups": [group]})
            stub.add_response(
                "describe_target_health",
                {
                    "TargetHealthDescriptions": [
                        {
                            "Target": {"Id": f"10.0.0.{i}", "Port": 3000},
                            "TargetHealth": {"State": s, **({"Reason": r} if r else {})},
                        }
                        for i, (s, r) in enumerate(states)
                    ]
                },
                {"TargetGroupArn": TG},
            )
        got = []
        for _ in range(3):
            tg = traffic.describe_target_group("web-green")
            assert tg is not None
            got.append(tuple(t.state for t in tg.targets))
    assert got == [
        (TargetState.INITIAL,),
        (TargetState.HEALTHY, TargetState.UNHEALTHY),
        (TargetState.DRAINING,),
    ]


def test_listener_that_reads_back_wrong_is_an_error() -> None:
    """No half-switched listener: a ModifyListener that does not read back the new group is
    reported, naming the listener."""
    client = _client("elbv2")
    traffic = ElbTraffic(client=client, resources=RES, clock=VirtualClock())
    other = TG.replace("shop-green", "shop-blue")
    with Stubber(client) as stub:
        stub.add_response("modify_listener", {"Listeners": []})
        stub.add_response(
            "describe_listeners",
            {
                "Listeners": [
                    {
                        "ListenerArn": LISTENER,
                        "Port": 80,
                        "DefaultActions": [{"Type": "forward", "TargetGroupArn": other}],
                    }
                ]
            },
        )
        stub.add_response("describe_load_balancers", {"LoadBalancers": []})
        with pytest.raises(DriverError, match="web-prod reads back"):
            traffic.switch_listener("web-prod", "web-green")


def test_p99_latency_comes_back_in_milliseconds_with_request_counts() -> None:
    """RB-1 reads TargetResponseTime p99 in ms with the period's requests as samples; moto
    returns no percentile. Real account only: CloudWatch's percentile estimation."""
    client = _client("cloudwatch")
    metrics = CloudWatchMetrics(
        client=client, resources=RES, clock=VirtualClock(), target_group=lambda n: (TG, LB)
    )
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with Stubber(client) as stub:
        stub.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    {
                        "Id": "l",
                        "Timestamps": [t0, t0 + timedelta(minutes=1)],
                        "Values": [0.25, 1.5],
                        "StatusCode": "Complete",
                    },
                    {
                        "Id": "r",
                        "Timestamps": [t0, t0 + timedelta(minutes=1)],
                        "Values": [400.0, 10.0],
                        "StatusCode": "Complete",
                    },
                ]
            },
            {
                "MetricDataQueries": [
                    {
                        "Id": "l",
                        "ReturnData": True,
                        "MetricStat": {
                            "Metric": {
                                "Namespace": "AWS/ApplicationELB",
                                "MetricName": "TargetResponseTime",
                                "Dimensions": [
                                    {
                                        "Name": "TargetGroup",
                                        "Value": "targetgroup/shop-green/0123456789abcdef",
                                    },
                                    {"Name": "LoadBalancer", "Value": "app/shop/50dc6c495c0c9188"},
                                ],
                            },
                            "Period": 60,
                            "Stat": "p99",
                        },
                    },
                    {
                        "Id": "r",
                        "ReturnData": True,
                        "MetricStat": {
                            "Metric": {
                                "Namespace": "AWS/ApplicationELB",
                                "MetricName": "RequestCount",
                                "Dimensions": ANY,
                            },
                            "Period": 60,
                            "Stat": "Sum",
                        },
                    },
                ],
                "StartTime": t0,
                "EndTime": t0 + timedelta(minutes=2),
                "ScanBy": "TimestampAscending",
            },
        )
        m = metrics.query(
            MetricQuery(
                metric=MetricName.RESPONSE_TIME,
                scope="web-green",
                statistic=Statistic.P99,
                start=t0,
                end=t0 + timedelta(minutes=2),
                period_s=30,
            )
        )
    assert m.ok
    assert [(d.value, d.samples) for d in m.datapoints] == [(250.0, 400), (1500.0, 10)]


def test_a_failed_metric_query_is_a_value_not_an_exception() -> None:
    client = _client("cloudwatch")
    metrics = CloudWatchMetrics(
        client=client, resources=RES, clock=VirtualClock(), target_group=lambda n: (TG, LB)
    )
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with Stubber(client) as stub:
        stub.add_client_error("get_metric_data", "Throttling", "Rate exceeded", 400)
        m = metrics.query(
            MetricQuery(
                metric=MetricName.ERROR_RATE,
                scope="web-green",
                statistic=Statistic.AVERAGE,
                start=t0,
                end=t0 + timedelta(minutes=1),
            )
        )
    assert not m.ok
    assert "GetMetricData" in m.error and "throttled" in m.error


@pytest.mark.parametrize(
    ("code", "status", "kind", "words"),
    [
        ("ExpiredTokenException", 400, PlatformUnavailableError, "log in again"),
        ("AccessDeniedException", 400, PlatformUnavailableError, "docs/aws.md"),
        ("ClusterNotFoundException", 400, NotFoundError, "terraform"),
        ("ThrottlingException", 400, DriverError, "throttled"),
        ("InvalidParameterException", 400, DriverError, "nothing was changed"),
    ],
)
def test_aws_errors_name_the_operation_and_the_fix(
    code: str, status: int, kind: type[Exception], words: str
) -> None:
    client = _client("ecs")
    with Stubber(client) as stub:
        stub.add_client_error("update_service", code, "told by AWS", status)
        with (
            pytest.raises(kind) as caught,
            map_aws_errors("ecs:UpdateService", resource="service shop-green"),
        ):
            client.update_service(cluster="shop", service="shop-green", desiredCount=0)
    text = str(caught.value)
    assert "ecs:UpdateService" in text
    assert "shop-green" in text
    assert words in text
    assert "fix:" in text or (kind is DriverError and "nothing was changed" in text)


def test_missing_credentials_say_how_to_configure_them() -> None:
    with (
        pytest.raises(PlatformUnavailableError, match="aws configure") as caught,
        map_aws_errors("elbv2:ModifyListener"),
    ):
        raise NoCredentialsError()
    assert caught.value.exit_code == 2
    assert "elbv2:ModifyListener" in str(caught.value)
