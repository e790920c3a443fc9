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

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from deployops.clock import Clock
from deployops.domain.alarms import AlarmAction, AlarmDefinition, Severity
from deployops.domain.model import Datapoint, Measurement, MetricName, MetricQuery, Statistic
from deployops.domain.rollout import ArmedRule
from deployops.domain.rules import Rule
from deployops.drivers.aws._errors import map_aws_errors
from deployops.drivers.aws._resources import AwsResources
from deployops.errors import DeployopsError, NotFoundError

__all__ = [
    "AlarmChange",
    "AlarmScope",
    "AlarmTargets",
    "CloudWatchAlarms",
    "CloudWatchMetrics",
    "alarm_request",
    "alb_dimensions",
    "metric_fields",
    "render_alarms",
    "render_rollback_alarms",
    "rollback_alarm_name",
]

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
        except NotFoundError:
            # A target group that does not exist served nothing: no datapoint, as CloudWatch
            # answers for a dimension nobody publishes (never a healthy reading).
            return Measurement(query=query, datapoints=())
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


# ---------------------------------------------------------------------- alarms (MON-1)
_COMPARISON = {
    ">": "GreaterThanThreshold",
    ">=": "GreaterThanOrEqualToThreshold",
    "<": "LessThanThreshold",
    "<=": "LessThanOrEqualToThreshold",
}
_COMPARED = (
    "AlarmDescription",
    "ActionsEnabled",
    "AlarmActions",
    "OKActions",
    "Namespace",
    "MetricName",
    "Dimensions",
    "Statistic",
    "ExtendedStatistic",
    "Period",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "Metrics",
)


@dataclass(frozen=True, slots=True)
class AlarmChange:
    """One alarm of ``alarms sync``: ``create``, ``update`` (with the fields that differ),
    ``unchanged`` or ``skipped`` (with why)."""

    name: str
    action: str
    changes: tuple[tuple[str, str, str], ...] = ()  # (field, was, becomes)
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmTargets:
    """What the MON-1 alarms watch on AWS, as infrastructure/modules/monitoring renders them:
    CPU and memory per ECS service (blue and green, or the one ecs-native service), each
    scaling out its own service; the ALB metrics (5XX...) per target group; LowHealthyHosts
    over both groups (either may be live). ``names`` are Terraform's (its ``alarm_names``
    output); an alarm it does not name is ``{prefix}-{colour}-{alarm}`` or
    ``{prefix}-{alarm}``, as the module names them."""

    prefix: str
    cluster: str
    load_balancer_arn: str
    target_groups: Mapping[str, str]  # colour -> target group ARN
    ecs_services: Mapping[str, str]  # colour (blue, green; native) -> ECS service name
    warning_topic_arn: str
    critical_topic_arn: str
    scale_out_policies: Mapping[str, str] = field(default_factory=dict)  # colour -> ARN
    names: Mapping[str, str | Mapping[str, str]] = field(default_factory=dict)

    def name(self, alarm: str, colour: str | None = None) -> str:
        named = self.names.get(alarm)
        if colour is None:
            return named if isinstance(named, str) else f"{self.prefix}-{alarm}"
        if isinstance(named, Mapping) and colour in named:
            return str(named[colour])
        return f"{self.prefix}-{colour}-{alarm}"

    def service_of(self, colour: str) -> str:
        """The ECS service behind a target group's colour (the one service in ecs-native)."""
        if colour in self.ecs_services:
            return colour
        return sorted(self.ecs_services)[0] if self.ecs_services else colour


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmScope:
    """What one alarm watches: target groups (ALB metrics, summed when there are several) and
    ECS services (the busiest one when there are several)."""

    cluster: str
    load_balancer_arn: str
    target_group_arns: tuple[str, ...] = ()
    ecs_services: tuple[str, ...] = ()


def _lb_suffix(load_balancer_arn: str) -> str:
    return load_balancer_arn.split(":", 5)[-1].removeprefix("loadbalancer/")


def metric_fields(rule: Rule, scope: AlarmScope) -> dict[str, Any] | str:
    """The metric part of a ``PutMetricAlarm`` request judging ``rule`` over ``scope`` (a single
    metric, or metric math), or why CloudWatch cannot judge it. A rule with ``min_samples``
    judges only periods with that many requests, as the rule engine does (a quieter period
    reads 0, never a breach)."""
    period = _period(rule.period_s)
    stat = rule.statistic.value
    lb_dims = (
        [{"Name": "LoadBalancer", "Value": _lb_suffix(scope.load_balancer_arn)}]
        if scope.load_balancer_arn
        else []
    )
    tg_dims = [
        [{"Name": "TargetGroup", "Value": arn.split(":", 5)[-1]}, *lb_dims]
        for arn in scope.target_group_arns
    ] or [lb_dims]
    m = rule.metric

    def per_tg(prefix: str, metric: str, statistic: str) -> tuple[list[dict[str, Any]], str]:
        """One query per target group and the expression summing them."""
        queries = [
            _stat_query(period, f"{prefix}{i}", ALB, metric, dims, statistic)
            for i, dims in enumerate(tg_dims)
        ]
        total = " + ".join(f"FILL({prefix}{i}, 0)" for i in range(len(queries)))
        return queries, total if len(queries) > 1 else f"FILL({prefix}0, 0)"

    def math(queries: list[dict[str, Any]], expression: str, label: str) -> dict[str, Any]:
        return {
            "Metrics": [
                *queries,
                {"Id": "value", "Expression": expression, "Label": label, "ReturnData": True},
            ]
        }

    if m in (MetricName.HTTP_5XX, MetricName.REQUEST_COUNT):
        metric = "HTTPCode_Target_5XX_Count" if m is MetricName.HTTP_5XX else "RequestCount"
        if len(tg_dims) == 1:
            return {
                "Namespace": ALB,
                "MetricName": metric,
                "Dimensions": tg_dims[0],
                "Statistic": stat,
                "Period": period,
            }
        queries, total = per_tg("tg", metric, stat)
        return math(queries, total, metric)
    if m is MetricName.ERROR_RATE:
        errors, e_total = per_tg("e", "HTTPCode_Target_5XX_Count", "Sum")
        requests, r_total = per_tg("r", "RequestCount", "Sum")
        rate = f"100 * ({e_total}) / ({r_total})"
        if rule.min_samples:
            rate = f"IF(({r_total}) >= {rule.min_samples}, {rate}, 0)"
        return math([*errors, *requests], rate, "ErrorRate")
    if m is MetricName.RESPONSE_TIME:
        if len(tg_dims) != 1:
            return "a latency percentile cannot be summed over target groups"
        if not rule.min_samples:
            fields: dict[str, Any] = {
                "Namespace": ALB,
                "MetricName": "TargetResponseTime",
                "Dimensions": tg_dims[0],
                "Period": period,
            }
            fields["ExtendedStatistic" if stat.startswith("p") else "Statistic"] = stat
            return fields
        latency = _stat_query(period, "latency", ALB, "TargetResponseTime", tg_dims[0], stat)
        count = _stat_query(period, "requests", ALB, "RequestCount", tg_dims[0], "Sum")
        return math(
            [latency, count],
            f"IF(FILL(requests, 0) >= {rule.min_samples}, latency, 0)",
            "TargetResponseTime",
        )
    if m is MetricName.HEALTHY_HOSTS:
        queries, total = per_tg("tg", "HealthyHostCount", stat)
        return math(queries, total, "HealthyHostCount")
    if m is MetricName.HEALTH_CHECK_FAILURES:
        healthy, h_total = per_tg("h", "HealthyHostCount", "Average")
        unhealthy, u_total = per_tg("u", "UnHealthyHostCount", "Average")
        ratio = (
            f"IF(({h_total}) + ({u_total}) > 0, 100 * ({u_total}) / (({h_total}) + ({u_total})), 0)"
        )
        return math([*healthy, *unhealthy], ratio, "HealthCheckFailureRatio")
    if m in (MetricName.CPU, MetricName.MEMORY):

        def dims(svc: str) -> list[dict[str, str]]:
            return [
                {"Name": "ClusterName", "Value": scope.cluster},
                {"Name": "ServiceName", "Value": svc},
            ]

        if len(scope.ecs_services) == 1:
            return {
                "Namespace": ECS,
                "MetricName": m.value,
                "Dimensions": dims(scope.ecs_services[0]),
                "Statistic": stat,
                "Period": period,
            }
        queries = [
            _stat_query(period, f"svc{i}", ECS, m.value, dims(svc), stat)
            for i, svc in enumerate(scope.ecs_services)
        ]
        return math(queries, "MAX([" + ", ".join(q["Id"] for q in queries) + "])", m.value)
    return (
        "a percentage of max_connections needs the instance's limit: "
        "infrastructure/modules/monitoring renders this alarm"
    )


def alarm_request(
    name: str,
    rule: Rule,
    scope: AlarmScope,
    *,
    description: str,
    actions: Sequence[str] = (),
    ok_actions: Sequence[str] = (),
) -> dict[str, Any] | AlarmChange:
    """The ``PutMetricAlarm`` request judging ``rule`` over ``scope`` (an ``AlarmChange``
    "skipped" when CloudWatch cannot judge it)."""
    fields = metric_fields(rule, scope)
    if isinstance(fields, str):
        return AlarmChange(name=name, action="skipped", reason=fields)
    request: dict[str, Any] = {
        "AlarmName": name,
        "AlarmDescription": description,
        "ActionsEnabled": True,
        "AlarmActions": list(actions),
        "OKActions": list(ok_actions),
        "EvaluationPeriods": rule.evaluation_periods,
        "DatapointsToAlarm": rule.m_of_n[0],
        "Threshold": float(rule.threshold),
        "ComparisonOperator": _COMPARISON[rule.comparison.value],
        "TreatMissingData": rule.missing_data.value,
        **fields,
    }
    if rule.metric is MetricName.RESPONSE_TIME:
        request["Threshold"] = float(rule.threshold) / 1000.0  # CloudWatch: seconds
    return request


def rollback_alarm_name(ecs_service: str, rule: str, *, cluster: str) -> str:
    """The alarm that arms rollback rule ``rule`` on ``ecs_service``'s rolling deployments:
    ``{ecs service}-rollback-{rule}``, prefixed with the cluster when the service name does
    not already carry it (alarm names are unique per account and region)."""
    base = ecs_service if ecs_service.startswith(cluster) else f"{cluster}-{ecs_service}"
    return f"{base}-rollback-{rule}"


def render_rollback_alarms(
    armed: Sequence[ArmedRule], *, scope: AlarmScope, ecs_service: str
) -> list[dict[str, Any] | AlarmChange]:
    """The rollback rules of a rolling deployment of ``ecs_service`` as ``PutMetricAlarm``
    requests on its own target group and tasks. They have no actions: ECS reads their state
    and rolls back; deployops reports the rollback itself."""
    out: list[dict[str, Any] | AlarmChange] = []
    for a in armed:
        rule = a.rule
        text = f"deployops rollback rule {rule.name} (ECS rolls back on ALARM): {rule.describe()}"
        if a.note:
            text += f"; {a.note}"
        out.append(
            alarm_request(
                rollback_alarm_name(ecs_service, rule.name, cluster=scope.cluster),
                rule,
                scope,
                description=text,
            )
        )
    return out


def render_alarms(
    definitions: Sequence[AlarmDefinition], targets: AlarmTargets
) -> list[dict[str, Any] | AlarmChange]:
    """The ``PutMetricAlarm`` request of each alarm per what it watches (see
    :class:`AlarmTargets`), or an ``AlarmChange`` "skipped"."""
    out: list[dict[str, Any] | AlarmChange] = []
    for a in definitions:
        rule = a.rule
        # Every alarm notifies the alerts topic; a critical one also the critical topic.
        notify = [targets.warning_topic_arn] if targets.warning_topic_arn else []
        if a.severity is Severity.CRITICAL and targets.critical_topic_arn not in ("", *notify):
            notify.append(targets.critical_topic_arn)
        scales = a.action is AlarmAction.SCALE_OUT

        def actions(*colours: str, scales: bool = scales, notify: list[str] = notify) -> list[str]:
            policies = [targets.scale_out_policies.get(c, "") for c in colours] if scales else []
            return [*[p for p in policies if p], *notify]

        description = f"MON-1 (deployops): {a.description or rule.describe()}"
        m = rule.metric
        if m in (MetricName.CPU, MetricName.MEMORY):
            for colour, svc in sorted(targets.ecs_services.items()):
                scope = AlarmScope(
                    cluster=targets.cluster,
                    load_balancer_arn=targets.load_balancer_arn,
                    ecs_services=(svc,),
                )
                out.append(
                    alarm_request(
                        targets.name(rule.name, colour),
                        rule,
                        scope,
                        description=f"{description} ({svc})",
                        actions=actions(colour),
                        ok_actions=notify,
                    )
                )
        elif m is MetricName.HEALTHY_HOSTS:
            out.append(
                _healthy_hosts(
                    targets.name(rule.name),
                    rule,
                    targets,
                    description=description,
                    actions=actions(*sorted(targets.ecs_services)),
                    ok_actions=notify,
                )
            )
        elif m is MetricName.DB_CONNECTIONS:
            out.append(
                AlarmChange(
                    name=targets.name(rule.name),
                    action="skipped",
                    reason="a percentage of max_connections needs the instance's limit: "
                    "infrastructure/modules/monitoring renders this alarm",
                )
            )
        else:
            for colour, tg in sorted(targets.target_groups.items()):
                scope = AlarmScope(
                    cluster=targets.cluster,
                    load_balancer_arn=targets.load_balancer_arn,
                    target_group_arns=(tg,),
                )
                out.append(
                    alarm_request(
                        targets.name(rule.name, colour),
                        rule,
                        scope,
                        description=f"{description} ({colour} target group)",
                        actions=actions(targets.service_of(colour)),
                        ok_actions=notify,
                    )
                )
    return out


def _healthy_hosts(
    name: str,
    rule: Rule,
    targets: AlarmTargets,
    *,
    description: str,
    actions: Sequence[str],
    ok_actions: Sequence[str],
) -> dict[str, Any] | AlarmChange:
    """LowHealthyHosts as the module renders it: the healthy targets of both groups summed
    (query ids are the colours)."""
    request = alarm_request(
        name,
        rule,
        AlarmScope(cluster=targets.cluster, load_balancer_arn=targets.load_balancer_arn),
        description=description,
        actions=actions,
        ok_actions=ok_actions,
    )
    if isinstance(request, AlarmChange):
        return request
    lb = [{"Name": "LoadBalancer", "Value": _lb_suffix(targets.load_balancer_arn)}]
    colours = sorted(targets.target_groups)
    queries = [
        _stat_query(
            _period(rule.period_s),
            colour,
            ALB,
            "HealthyHostCount",
            [{"Name": "TargetGroup", "Value": targets.target_groups[colour].split(":", 5)[-1]}]
            + (lb if targets.load_balancer_arn else []),
            rule.statistic.value,
        )
        for colour in colours
    ]
    for key in ("Namespace", "MetricName", "Dimensions", "Statistic", "Period", "Metrics"):
        request.pop(key, None)
    request["Metrics"] = [
        *queries,
        {
            "Id": "healthy",
            "Expression": " + ".join(f"FILL({c}, 0)" for c in colours),
            "Label": f"HealthyHostCount ({' + '.join(colours)})",
            "ReturnData": True,
        },
    ]
    return request


def _stat_query(
    period: int, qid: str, ns: str, metric: str, dims: list[dict[str, str]], stat: str
) -> dict[str, Any]:
    return {
        "Id": qid,
        "MetricStat": {
            "Metric": {"Namespace": ns, "MetricName": metric, "Dimensions": dims},
            "Period": period,
            "Stat": stat,
        },
        "ReturnData": False,
    }


def _normal(value: Any) -> Any:
    """A request or a DescribeAlarms entry in one comparable form."""
    if isinstance(value, dict):
        if set(value) == {"Name", "Value"}:
            return {"Name": value["Name"], "Value": value["Value"]}
        return {k: _normal(v) for k, v in sorted(value.items()) if v not in (None, [], "")}
    if isinstance(value, list):
        items = [_normal(v) for v in value]
        if items and all(isinstance(i, dict) and "Name" in i and "Value" in i for i in items):
            return sorted(items, key=lambda d: d["Name"])
        if items and all(isinstance(i, str) for i in items):
            return sorted(items)  # actions: their order means nothing to CloudWatch
        return items
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


class CloudWatchAlarms:
    """``alarms sync``: ``PutMetricAlarm`` for every alarm that differs, nothing otherwise."""

    def __init__(self, *, client: Any) -> None:
        self.client = client

    def existing(self, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for i in range(0, len(names), 100):
            with map_aws_errors("cloudwatch:DescribeAlarms"):
                page = self.client.describe_alarms(
                    AlarmNames=list(names[i : i + 100]), AlarmTypes=["MetricAlarm"]
                )
            for alarm in page.get("MetricAlarms", []):
                found[str(alarm["AlarmName"])] = dict(alarm)
        return found

    def sync(
        self, rendered: Sequence[dict[str, Any] | AlarmChange], *, dry_run: bool
    ) -> list[AlarmChange]:
        requests = [r for r in rendered if isinstance(r, dict)]
        have = self.existing([str(r["AlarmName"]) for r in requests])
        out: list[AlarmChange] = []
        for item in rendered:
            if isinstance(item, AlarmChange):
                out.append(item)
                continue
            name = str(item["AlarmName"])
            current = have.get(name)
            if current is None:
                change = AlarmChange(name=name, action="create")
            else:
                diffs = tuple(
                    (key, _show(current.get(key)), _show(item.get(key)))
                    for key in _COMPARED
                    if _comparable(current.get(key)) != _comparable(item.get(key))
                )
                change = AlarmChange(
                    name=name, action="update" if diffs else "unchanged", changes=diffs
                )
            if change.action != "unchanged" and not dry_run:
                with map_aws_errors("cloudwatch:PutMetricAlarm", resource=f"alarm {name}"):
                    self.client.put_metric_alarm(**item)
            out.append(change)
        return out


def _comparable(value: Any) -> Any:
    """Absent and empty are the same to CloudWatch (no actions, no dimensions)."""
    found = _normal(value)
    return None if found in ([], {}, "") else found


def _show(value: Any) -> str:
    if value is None or value == []:
        return "-"
    if isinstance(value, list | dict):
        return json.dumps(_normal(value), sort_keys=True)
    return str(value)
