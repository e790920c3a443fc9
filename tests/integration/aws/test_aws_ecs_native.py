"""``aws.mode: ecs-native``: ECS's own BLUE_GREEN, watched by deployops and rolled back with
``StopServiceDeployment(stopType=ROLLBACK)``.

moto 5 implements none of ECS's blue/green (no service deployments, no lifecycle stages, no
listener-rule shifting), so the whole exchange is a ``botocore.stub.Stubber`` sequence: every
request deployops sends and every response it reads is checked against the ECS, ELBv2 and
CloudWatch models of the installed botocore. At each phase the production listener rule is
read (``DescribeRules``) and asserted. Real account only: that ECS shifts the rules at these
stages, how long each takes, and that the rollback returns traffic within the bake time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore.config import Config
from botocore.stub import ANY, Stubber

from deployops.clock import VirtualClock
from deployops.domain.model import MetricName, MetricQuery, Statistic
from deployops.domain.native import NativeStart
from deployops.drivers.aws import AwsResources, CloudWatchMetrics, ElbTraffic
from deployops.drivers.aws.ecs import ServiceDeployment
from deployops.drivers.aws.ecs_native import (
    EcsNativeBlueGreen,
    EcsNativeDeployments,
    NativeSettings,
)

ELB = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012"
BLUE = f"{ELB}:targetgroup/shop-blue/0123456789abcdef"
GREEN = f"{ELB}:targetgroup/shop-green/fedcba9876543210"
LB = f"{ELB}:loadbalancer/app/shop/50dc6c495c0c9188"
PROD_RULE = f"{ELB}:listener-rule/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
TEST_RULE = f"{ELB}:listener-rule/app/shop/50dc6c495c0c9188/c0ffee0000000000/1234567890abcdef"
DEPLOYMENT = "arn:aws:ecs:ap-northeast-1:123456789012:service-deployment/shop/shop/abc123"
SETTINGS = NativeSettings(
    target_group_arn=BLUE,
    alternate_target_group_arn=GREEN,
    production_listener_rule=PROD_RULE,
    test_listener_rule=TEST_RULE,
    role_arn="arn:aws:iam::123456789012:role/shop-ecs-infrastructure",
    container_name="app",
    container_port=3000,
    bake_time_s=300,
)
RES = AwsResources(cluster="shop", target_groups={"web-blue": BLUE, "web-green": GREEN})
NATIVE_RES = AwsResources(
    cluster="shop",
    target_groups={"web-blue": BLUE, "web-green": GREEN},
    native_services={"web": "shop"},
    prod_listener_rule=PROD_RULE,
    test_listener_rule=TEST_RULE,
    infrastructure_role_arn=SETTINGS.role_arn,
    mode="ecs-native",
)


def _client(service: str) -> Any:
    return botocore.session.get_session().create_client(
        service,
        region_name="ap-northeast-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1, "mode": "adaptive"}),
    )


class Native:
    def __init__(self) -> None:
        self.clock = VirtualClock()
        self.ecs, self.elb, self.cw = _client("ecs"), _client("elbv2"), _client("cloudwatch")
        self.stubs = [Stubber(c) for c in (self.ecs, self.elb, self.cw)]
        self.native = EcsNativeBlueGreen(client=self.ecs, cluster="shop", clock=self.clock)
        self.traffic = ElbTraffic(client=self.elb, resources=RES, clock=self.clock)
        self.metrics = CloudWatchMetrics(
            client=self.cw, resources=RES, clock=self.clock, target_group=lambda n: (GREEN, LB)
        )
        self.seen: list[tuple[str, str, str]] = []  # (status, stage, production rule -> tg)

    @property
    def ecs_stub(self) -> Stubber:
        return self.stubs[0]

    def start_calls(self) -> None:
        self.ecs_stub.add_response(
            "update_service",
            {"service": {"serviceName": "shop"}},
            {
                "cluster": "shop",
                "service": "shop",
                "taskDefinition": "shop:8",
                "deploymentConfiguration": {
                    "strategy": "BLUE_GREEN",
                    "bakeTimeInMinutes": 5,
                    "maximumPercent": 200,
                    "minimumHealthyPercent": 100,
                    "deploymentCircuitBreaker": {"enable": True, "rollback": True},
                },
                "loadBalancers": [
                    {
                        "targetGroupArn": BLUE,
                        "containerName": "app",
                        "containerPort": 3000,
                        "advancedConfiguration": {
                            "alternateTargetGroupArn": GREEN,
                            "productionListenerRule": PROD_RULE,
                            "testListenerRule": TEST_RULE,
                            "roleArn": SETTINGS.role_arn,
                        },
                    }
                ],
            },
        )
        self.ecs_stub.add_response(
            "list_service_deployments",
            {"serviceDeployments": [{"serviceDeploymentArn": DEPLOYMENT, "status": "PENDING"}]},
            {"cluster": "shop", "service": "shop", "status": ["PENDING", "IN_PROGRESS"]},
        )

    def poll(self, status: str, stage: str, prod_to: str) -> None:
        """One poll: ECS reports the deployment; the production rule forwards to ``prod_to``."""
        self.ecs_stub.add_response(
            "describe_service_deployments",
            {
                "serviceDeployments": [
                    {"serviceDeploymentArn": DEPLOYMENT, "status": status, "lifecycleStage": stage}
                ]
            },
            {"serviceDeploymentArns": [DEPLOYMENT]},
        )
        self.stubs[1].add_response(
            "describe_rules",
            {
                "Rules": [
                    {
                        "RuleArn": PROD_RULE,
                        "Actions": [{"Type": "forward", "TargetGroupArn": prod_to}],
                    }
                ]
            },
            {"RuleArns": [PROD_RULE]},
        )

    def error_rate(self, errors: float, requests: float) -> None:
        t = datetime(2026, 1, 1, tzinfo=UTC)
        self.stubs[2].add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    {"Id": "e", "Timestamps": [t], "Values": [errors], "StatusCode": "Complete"},
                    {"Id": "r", "Timestamps": [t], "Values": [requests], "StatusCode": "Complete"},
                ]
            },
            {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY, "ScanBy": ANY},
        )

    def on_poll(self, dep: ServiceDeployment) -> None:
        ((tg, _),) = self.traffic.describe_rule(PROD_RULE)
        self.seen.append((dep.status, dep.lifecycle_stage, tg))

    def judge(self, dep: ServiceDeployment) -> str | None:
        """The RB-1 error-rate rule, over CloudWatch, once production traffic reached green."""
        if dep.lifecycle_stage not in ("PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"):
            return None
        now = self.clock.now()
        m = self.metrics.query(
            MetricQuery(
                metric=MetricName.ERROR_RATE,
                scope="web-green",
                statistic=Statistic.AVERAGE,
                start=now,
                end=now,
            )
        )
        rate = m.datapoints[0].value if m.datapoints else 0.0
        return f"error rate {rate:.1f}% above 1%" if rate >= 1.0 else None


@pytest.fixture
def native() -> Iterator[Native]:
    n = Native()
    for s in n.stubs:
        s.activate()
    yield n
    for s in n.stubs:
        s.assert_no_pending_responses()
        s.deactivate()


def test_blue_green_succeeds_after_the_bake_time(native: Native) -> None:
    """ECS shifts test, then production traffic to green; deployops' rules pass during the
    bake; the deployment ends SUCCESSFUL with production on green."""
    native.start_calls()
    native.poll("IN_PROGRESS", "TEST_TRAFFIC_SHIFT", BLUE)
    native.poll("IN_PROGRESS", "POST_PRODUCTION_TRAFFIC_SHIFT", GREEN)
    native.error_rate(0, 600)
    native.poll("SUCCESSFUL", "", GREEN)
    arn = native.native.start("shop", task_definition="shop:8", settings=SETTINGS)
    outcome = native.native.watch(
        arn, judge=native.judge, timeout_s=1800, interval_s=15, on_poll=native.on_poll
    )
    assert outcome.status == "succeeded"
    assert native.seen == [
        ("IN_PROGRESS", "TEST_TRAFFIC_SHIFT", "web-blue"),
        ("IN_PROGRESS", "POST_PRODUCTION_TRAFFIC_SHIFT", "web-green"),
        ("SUCCESSFUL", "", "web-green"),
    ]


def test_a_broken_rule_during_the_bake_rolls_back_with_stop_service_deployment(
    native: Native,
) -> None:
    """RB-1 on ecs-native: 20 % 5XX on green while baking -> StopServiceDeployment(ROLLBACK);
    ECS returns production to blue and deployops reports the rollback with its reason."""
    native.start_calls()
    native.poll("IN_PROGRESS", "TEST_TRAFFIC_SHIFT", BLUE)
    native.poll("IN_PROGRESS", "POST_PRODUCTION_TRAFFIC_SHIFT", GREEN)
    native.error_rate(120, 600)
    native.ecs_stub.add_response(
        "stop_service_deployment",
        {"serviceDeploymentArn": DEPLOYMENT},
        {"serviceDeploymentArn": DEPLOYMENT, "stopType": "ROLLBACK"},
    )
    native.poll("ROLLBACK_IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", GREEN)
    native.poll("ROLLBACK_SUCCESSFUL", "", BLUE)
    arn = native.native.start("shop", task_definition="shop:8", settings=SETTINGS)
    outcome = native.native.watch(
        arn, judge=native.judge, timeout_s=1800, interval_s=15, on_poll=native.on_poll
    )
    assert outcome.status == "rolled_back"
    assert outcome.reason == "error rate 20.0% above 1%"
    assert [tg for _, _, tg in native.seen] == ["web-blue", "web-green", "web-green", "web-blue"]


def test_the_engine_port_starts_blue_green_with_a_pause_hook_and_answers_it(
    native: Native,
) -> None:
    """The request ``deployops deploy`` sends in ecs-native mode, checked field by field
    against the ECS model: production stays on the group the production rule forwards to
    (green here: the groups trade places), the new revision goes behind the other, and a
    PAUSE hook at POST_TEST_TRAFFIC_SHIFT (timeout action ROLLBACK) holds production until
    ``ContinueServiceDeployment``. Real account only: that ECS honours the hook's timeout."""
    port = EcsNativeDeployments(
        client=native.ecs,
        resources=NATIVE_RES,
        target_group_arn=lambda name: NATIVE_RES.target_groups[name],
        forwards=lambda rule: GREEN,
        container_port=lambda td: 3000,
    )
    running = {"cluster": "shop", "service": "shop", "status": ["PENDING", "IN_PROGRESS"]}
    native.ecs_stub.add_response("list_service_deployments", {"serviceDeployments": []}, running)
    native.ecs_stub.add_response(
        "update_service",
        {"service": {"serviceName": "shop"}},
        {
            "cluster": "shop",
            "service": "shop",
            "taskDefinition": "shop:9",
            "deploymentConfiguration": {
                "strategy": "BLUE_GREEN",
                "bakeTimeInMinutes": 1,
                "maximumPercent": 200,
                "minimumHealthyPercent": 100,
                "deploymentCircuitBreaker": {"enable": True, "rollback": True},
                "lifecycleHooks": [
                    {
                        "targetType": "PAUSE",
                        "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
                        "timeoutConfiguration": {"timeoutInMinutes": 10, "action": "ROLLBACK"},
                    }
                ],
            },
            "loadBalancers": [
                {
                    "targetGroupArn": GREEN,
                    "containerName": "app",
                    "containerPort": 3000,
                    "advancedConfiguration": {
                        "alternateTargetGroupArn": BLUE,
                        "productionListenerRule": PROD_RULE,
                        "testListenerRule": TEST_RULE,
                        "roleArn": SETTINGS.role_arn,
                    },
                }
            ],
        },
    )
    native.ecs_stub.add_response(
        "list_service_deployments",
        {"serviceDeployments": [{"serviceDeploymentArn": DEPLOYMENT, "status": "PENDING"}]},
        running,
    )
    native.ecs_stub.add_response(
        "describe_service_deployments",
        {
            "serviceDeployments": [
                {
                    "serviceDeploymentArn": DEPLOYMENT,
                    "status": "IN_PROGRESS",
                    "lifecycleStage": "POST_TEST_TRAFFIC_SHIFT",
                    "lifecycleHookDetails": [
                        {
                            "hookId": "ecs-pause-abc",
                            "targetType": "PAUSE",
                            "status": "AWAITING_ACTION",
                            "timeoutAction": "ROLLBACK",
                        }
                    ],
                }
            ]
        },
        {"serviceDeploymentArns": [DEPLOYMENT]},
    )
    native.ecs_stub.add_response(
        "continue_service_deployment",
        {"serviceDeploymentArn": DEPLOYMENT},
        {"serviceDeploymentArn": DEPLOYMENT, "hookId": "ecs-pause-abc", "action": "CONTINUE"},
    )
    arn = port.start(
        NativeStart(
            service="web",
            task_definition="shop:9",
            target_group="web-blue",
            previous_target_group="web-green",
            bake_time_s=60,
            pause_timeout_s=600,
        )
    )
    assert arn == DEPLOYMENT
    dep = port.describe(arn)
    hook = dep.paused
    assert hook is not None
    assert (hook.hook_id, hook.timeout_action) == ("ecs-pause-abc", "ROLLBACK")
    port.release(arn, hook.hook_id)
