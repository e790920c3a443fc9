"""``CloudWatchMetrics``: the ``Metrics`` port on CloudWatch ``GetMetricData``.

The engine's metric names map onto ALB and ECS metrics so the RB-1 rules read the same
:class:`~deployops.domain.model.Measurement` values they read locally:

======================  =====================================================  =============
engine metric           CloudWatch                                              unit
======================  =====================================================  =============
RequestCount            AWS/ApplicationELB RequestCount (Sum)                   requests
HTTPCode_5XX            AWS/ApplicationELB HTTPCode_Target_5XX_Count (Sum)      requests
ErrorRate               100 * 5XX / RequestCount per period                     percent
TargetResponseTime      AWS/ApplicationELB TargetResponseTime (seconds * 1000)  milliseconds
HealthyHostCount        AWS/ApplicationELB HealthyHostCount                     targets
HealthCheckFailureRatio 100 * UnHealthy / (Healthy + UnHealthy)                 percent
CPUUtilization          AWS/ECS CPUUtilization (ClusterName, ServiceName)       percent
MemoryUtilization       AWS/ECS MemoryUtilization                               percent
======================  =====================================================  =============

The scope is a target group (``web-green``) for ALB metrics and the ECS service of that colour
for ECS metrics. ``samples`` of each datapoint is the period's request count where requests
are what the value summarises (error rate, latency), so a quiet period is not judged as a busy
one. A failed query is a ``Measurement`` with ``error`` (never an exception).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar

from deployops.clock import Clock
from deployops.domain.model import Datapoint, Measurement, MetricName, MetricQuery, Statistic
from deployops.drivers.aws._errors import map_aws_errors
from deployops.drivers.aws._resources import AwsResources
from deployops.errors import DeployopsError

__all__ = ["CloudWatchMetrics", "alb_dimensions"]

ALB = "AWS/ApplicationELB"
ECS = "AWS/ECS"


def alb_dimensions(target_group_arn: str, load_balancer_arn: str) -> list[dict[str, str]]:
    """CloudWatch's dimensions of a target group: the ARN suffixes ``targetgroup/...`` and
    ``app/...``."""
    dims = [{"Name": "TargetGroup", "Value": target_group_arn.split(":", 5)[-1]}]
    if load_balancer_arn:
        lb = load_balancer_arn.split(":", 5)[-1].removeprefix("loadbalancer/")
        dims.append({"Name": "LoadBalancer", "Value": lb})
    return dims


class CloudWatchMetrics:
    name: ClassVar[str] = "cloudwatch"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"percentiles", "request_metrics", "service_metrics", "health_metrics"}
    )

    def __init__(
        self,
        *,
        client: Any,
        resources: AwsResources,
        clock: Clock,
        target_group: Callable[[str], tuple[str, str]],
    ) -> None:
        """``target_group(name)`` returns (target group ARN, load balancer ARN)."""
        self.client = client
        self.resources = resources
        self.clock = clock
        self.target_group = target_group

    def query(self, query: MetricQuery) -> Measurement:
        try:
            return Measurement(query=query, datapoints=tuple(self._datapoints(query)))
        except DeployopsError as exc:
            return Measurement(query=query, error=exc.message)

    # ------------------------------------------------------------------ per metric
    def _datapoints(self, q: MetricQuery) -> list[Datapoint]:
        if "/" in q.scope:
            raise DeployopsError(
                f"CloudWatch has no per-task series for {q.scope}; query the service or target "
                "group"
            )
        m = q.metric
        if m in (MetricName.CPU, MetricName.MEMORY):
            dims = [
                {"Name": "ClusterName", "Value": self.resources.cluster},
                {"Name": "ServiceName", "Value": self.resources.ecs_service(q.scope)},
            ]
            series = self._get(q, {"v": (ECS, str(m), dims, _stat(q.statistic))})
            return [Datapoint(t, v, 1) for t, v in series["v"]]
        if m is MetricName.DB_CONNECTIONS:
            raise DeployopsError(
                "DatabaseConnections as a percentage is evaluated by the RDS alarm on aws"
            )
        tg_arn, lb_arn = self.target_group(q.scope)
        dims = alb_dimensions(tg_arn, lb_arn)
        if m is MetricName.REQUEST_COUNT:
            s = self._get(q, {"r": (ALB, "RequestCount", dims, "Sum")})
            return [Datapoint(t, v, int(v)) for t, v in s["r"]]
        if m is MetricName.HTTP_5XX:
            s = self._get(
                q,
                {
                    "e": (ALB, "HTTPCode_Target_5XX_Count", dims, "Sum"),
                    "r": (ALB, "RequestCount", dims, "Sum"),
                },
            )
            reqs = dict(s["r"])
            return [Datapoint(t, v, int(reqs.get(t, 0))) for t, v in s["e"]]
        if m is MetricName.ERROR_RATE:
            s = self._get(
                q,
                {
                    "e": (ALB, "HTTPCode_Target_5XX_Count", dims, "Sum"),
                    "r": (ALB, "RequestCount", dims, "Sum"),
                },
            )
            errors = dict(s["e"])  # a period with requests and no 5XX datapoint had none
            return [
                Datapoint(t, 100.0 * errors.get(t, 0.0) / r, int(r)) for t, r in s["r"] if r > 0
            ]
        if m is MetricName.RESPONSE_TIME:
            s = self._get(
                q,
                {
                    "l": (ALB, "TargetResponseTime", dims, _stat(q.statistic)),
                    "r": (ALB, "RequestCount", dims, "Sum"),
                },
            )
            reqs = dict(s["r"])
            return [Datapoint(t, v * 1000.0, int(reqs.get(t, 0))) for t, v in s["l"]]
        if m is MetricName.HEALTHY_HOSTS:
            s = self._get(q, {"h": (ALB, "HealthyHostCount", dims, _stat(q.statistic))})
            return [Datapoint(t, v, 1) for t, v in s["h"]]
        if m is MetricName.HEALTH_CHECK_FAILURES:
            s = self._get(
                q,
                {
                    "h": (ALB, "HealthyHostCount", dims, "Average"),
                    "u": (ALB, "UnHealthyHostCount", dims, "Average"),
                },
            )
            healthy = dict(s["h"])
            out = []
            for t, u in s["u"]:
                total = u + healthy.get(t, 0.0)
                out.append(Datapoint(t, 100.0 * u / total if total else 0.0, int(total)))
            return out
        raise DeployopsError(f"metric {m} has no CloudWatch equivalent")  # pragma: no cover

    def _get(
        self, q: MetricQuery, metrics: Mapping[str, tuple[str, str, list[dict[str, str]], str]]
    ) -> dict[str, list[tuple[datetime, float]]]:
        queries = [
            {
                "Id": key,
                "MetricStat": {
                    "Metric": {"Namespace": ns, "MetricName": name, "Dimensions": dims},
                    "Period": _period(q.period_s),
                    "Stat": stat,
                },
                "ReturnData": True,
            }
            for key, (ns, name, dims, stat) in metrics.items()
        ]
        out: dict[str, list[tuple[datetime, float]]] = {k: [] for k in metrics}
        token = ""
        while True:
            request: dict[str, Any] = {
                "MetricDataQueries": queries,
                "StartTime": q.start,
                "EndTime": q.end,
                "ScanBy": "TimestampAscending",
            }
            if token:
                request["NextToken"] = token
            with map_aws_errors("cloudwatch:GetMetricData", resource=f"{q.metric} of {q.scope}"):
                page = self.client.get_metric_data(**request)
            for result in page.get("MetricDataResults", []):
                if result.get("StatusCode") == "Forbidden":
                    raise DeployopsError(f"CloudWatch refused {result.get('Id')}: Forbidden")
                pairs = zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
                out[str(result["Id"])].extend((t, float(v)) for t, v in pairs)
            token = str(page.get("NextToken") or "")
            if not token:
                break
        for series in out.values():
            series.sort(key=lambda p: p[0])
        return out

    def close(self) -> None:
        return None


def _period(seconds: int) -> int:
    """ALB and ECS publish at one-minute resolution: a period is a multiple of 60 s."""
    return 60 * max(1, -(-int(seconds) // 60))


def _stat(statistic: Statistic) -> str:
    return str(statistic.value)
