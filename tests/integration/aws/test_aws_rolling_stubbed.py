"""ECS rolling deployments with the RB-1 rules armed as alarms, driven with
``botocore.stub.Stubber`` (every canned response and every expected request is checked against
the AWS model): the ``PutMetricAlarm`` requests (metric math included) and the
``UpdateService`` request that names the alarms, which moto drops; a deployment ECS rolled back
because an alarm triggered, as ``DescribeServiceDeployments`` reports it.

No network: the clients point at a closed loopback port and the Stubber answers first. Real
account only: CloudWatch accepting and evaluating the expressions, ECS's bake time and rollback.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from deployops.clock import VirtualClock
from deployops.domain.policy import DEFAULT_ROLLBACK_POLICY
from deployops.domain.rollout import armed_rules
from deployops.drivers.aws import AwsResources, EcsCompute, EcsRollingDeployments
from deployops.drivers.aws.cloudwatch import CloudWatchAlarms

ELB = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012"
TG = f"{ELB}:targetgroup/shop-blue/0123456789abcdef"
LB = f"{ELB}:loadbalancer/app/shop/50dc6c495c0c9188"
DEPLOYMENT = "arn:aws:ecs:ap-northeast-1:123456789012:service-deployment/shop/shop-blue/d7"
RES = AwsResources(
    cluster="shop", target_groups={"web-blue": TG}, services={"web-blue": "shop-blue"}
)
NAMES = [
    "shop-blue-rollback-error-rate",
    "shop-blue-rollback-p99-latency",
    "shop-blue-rollback-memory",
    "shop-blue-rollback-health-check-failures",
]


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


class Stubs:
    def __init__(self) -> None:
        self.ecs_client, self.cw_client = _client("ecs"), _client("cloudwatch")
        self.ecs, self.cw = Stubber(self.ecs_client), Stubber(self.cw_client)
        compute = EcsCompute(
            client=self.ecs_client,
            resources=RES,
            clock=VirtualClock(),
            target_group_arn=lambda name: TG,
        )
        self.rolling = EcsRollingDeployments(
            compute=compute,
            alarms=CloudWatchAlarms(client=self.cw_client),
            target_group=lambda name: (TG, LB),
        )


@pytest.fixture
def stubs() -> Iterator[Stubs]:
    s = Stubs()
    with s.ecs, s.cw:
        yield s
        s.ecs.assert_no_pending_responses()
        s.cw.assert_no_pending_responses()


def test_the_rollback_rules_are_put_as_alarms_on_the_services_own_metrics(stubs: Stubs) -> None:
    """RB-1 as CloudWatch alarms: error rate as metric math over the blue target group that
    judges only periods with at least the minimum requests; p99 over its escalation window in
    seconds; memory on the blue ECS service; health-check failures as a ratio of unhealthy
    targets. Every request is checked against the CloudWatch model."""
    stubs.cw.add_response(
        "describe_alarms",
        {"MetricAlarms": []},
        {"AlarmNames": NAMES, "AlarmTypes": ["MetricAlarm"]},
    )
    sent: list[dict[str, Any]] = []
    for _ in NAMES:
        # botocore validates each request against the model before the Stubber answers
        stubs.cw.add_response("put_metric_alarm", {})
    stubs.cw_client.meta.events.register(
        "provide-client-params.cloudwatch.PutMetricAlarm",
        lambda params, **_: sent.append(dict(params)),
    )
    armed = stubs.rolling.arm("web-blue", armed_rules(DEFAULT_ROLLBACK_POLICY))
    assert [r["AlarmName"] for r in sent] == NAMES
    assert list(armed.values()) == NAMES
    assert list(armed) == ["error-rate", "p99-latency", "memory", "health-check-failures"]
    by_name = {r["AlarmName"]: r for r in sent}
    rate = by_name["shop-blue-rollback-error-rate"]
    (expression,) = [m["Expression"] for m in rate["Metrics"] if "Expression" in m]
    assert expression == "IF((FILL(r0, 0)) >= 20, 100 * (FILL(e0, 0)) / (FILL(r0, 0)), 0)"
    dims = rate["Metrics"][0]["MetricStat"]["Metric"]["Dimensions"]
    assert dims == [
        {"Name": "TargetGroup", "Value": "targetgroup/shop-blue/0123456789abcdef"},
        {"Name": "LoadBalancer", "Value": "app/shop/50dc6c495c0c9188"},
    ]
    assert (rate["EvaluationPeriods"], rate["Threshold"], rate["AlarmActions"]) == (5, 5.0, [])
    p99 = by_name["shop-blue-rollback-p99-latency"]
    assert (p99["EvaluationPeriods"], p99["DatapointsToAlarm"], p99["Threshold"]) == (10, 10, 1.0)
    assert p99["Metrics"][0]["MetricStat"]["Stat"] == "p99"
    memory = by_name["shop-blue-rollback-memory"]
    assert (memory["MetricName"], memory["EvaluationPeriods"]) == ("MemoryUtilization", 7)
    assert memory["Dimensions"] == [
        {"Name": "ClusterName", "Value": "shop"},
        {"Name": "ServiceName", "Value": "shop-blue"},
    ]
    health = by_name["shop-blue-rollback-health-check-failures"]
    assert [m["Id"] for m in health["Metrics"]] == ["h0", "u0", "value"]


def test_the_update_names_the_alarms_with_rollback_and_the_circuit_breaker(
    stubs: Stubs,
) -> None:
    """IAC-4 + RB-1: UpdateService carries deploymentConfiguration.alarms (enable, rollback)
    next to 200 % / 100 % and the circuit breaker; moto drops it, so the request is checked
    here. The deployment is the one ECS lists as running right after."""
    stubs.ecs.add_response(
        "list_service_deployments",
        {"serviceDeployments": []},
        {"cluster": "shop", "service": "shop-blue", "status": ["PENDING", "IN_PROGRESS"]},
    )
    stubs.ecs.add_response(
        "update_service",
        {"service": {"serviceName": "shop-blue", "desiredCount": 4, "taskDefinition": "shop:8"}},
        {
            "cluster": "shop",
            "service": "shop-blue",
            "taskDefinition": "shop:8",
            "desiredCount": 4,
            "deploymentConfiguration": {
                "maximumPercent": 200,
                "minimumHealthyPercent": 100,
                "deploymentCircuitBreaker": {"enable": True, "rollback": True},
                "alarms": {"alarmNames": NAMES[:2], "enable": True, "rollback": True},
            },
        },
    )
    stubs.ecs.add_response(
        "list_service_deployments",
        {"serviceDeployments": [{"serviceDeploymentArn": DEPLOYMENT, "status": "PENDING"}]},
        {"cluster": "shop", "service": "shop-blue", "status": ["PENDING", "IN_PROGRESS"]},
    )
    started = stubs.rolling.start(
        "web-blue", task_definition="shop:8", desired_count=4, alarms=NAMES[:2]
    )
    assert started == DEPLOYMENT


def test_a_deployment_ecs_rolled_back_on_an_alarm_reads_back_with_the_alarm(
    stubs: Stubs,
) -> None:
    """DescribeServiceDeployments after an alarm fired: ROLLBACK_IN_PROGRESS, then
    ROLLBACK_SUCCESSFUL, with the alarm ECS saw in ALARM and ECS's reason."""
    for status in ("ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL"):
        stubs.ecs.add_response(
            "describe_service_deployments",
            {
                "serviceDeployments": [
                    {
                        "serviceDeploymentArn": DEPLOYMENT,
                        "status": status,
                        "alarms": {
                            "status": "TRIGGERED",
                            "alarmNames": NAMES[:2],
                            "triggeredAlarmNames": NAMES[:1],
                        },
                        "deploymentCircuitBreaker": {"status": "MONITORING"},
                        "rollback": {
                            "reason": "CloudWatch alarm in ALARM state",
                            "startedAt": datetime(2026, 1, 1, tzinfo=UTC),
                        },
                    }
                ],
                "failures": [],
            },
            {"serviceDeploymentArns": [DEPLOYMENT]},
        )
    first = stubs.rolling.describe(DEPLOYMENT)
    assert (first.rolling_back, first.triggered_alarms) == (True, tuple(NAMES[:1]))
    assert first.rollback_reason == "CloudWatch alarm in ALARM state"
    assert not first.circuit_breaker
    assert stubs.rolling.describe(DEPLOYMENT).rolled_back
