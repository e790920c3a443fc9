"""Platform-neutral model shared by ports, drivers and the engine.

Drivers convert vendor responses (HAProxy, ECS, ELBv2, CloudWatch) into these dataclasses at
their edge; no raw vendor dict travels further.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

__all__ = [
    "Datapoint",
    "HealthCheck",
    "Listener",
    "Measurement",
    "MetricName",
    "MetricQuery",
    "ProbeResult",
    "ServiceState",
    "Statistic",
    "TargetGroup",
    "TargetHealth",
    "TargetState",
    "TaskDefinition",
    "TaskDefinitionSpec",
    "TaskInfo",
    "TaskState",
]


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """An HTTP health check (DEP-1: path ``/health``)."""

    path: str = "/health"
    interval_s: float = 5.0
    timeout_s: float = 2.0
    healthy_threshold: int = 2
    unhealthy_threshold: int = 3
    expected_status: int = 200


@dataclass(frozen=True, slots=True)
class TaskDefinitionSpec:
    """What to run. ``command`` for the local platform, ``image`` for AWS."""

    family: str
    version: str
    port: int
    command: tuple[str, ...] = ()
    image: str = ""
    environment: tuple[tuple[str, str], ...] = ()
    # secret name -> reference (``secret://NAME`` or an ARN); resolved by the platform, never here.
    secrets: tuple[tuple[str, str], ...] = ()
    health_check: HealthCheck = field(default_factory=HealthCheck)
    cpu: int = 256
    memory: int = 512
    working_dir: str = ""


@dataclass(frozen=True, slots=True)
class TaskDefinition:
    """A registered task definition, ``family:revision``."""

    family: str
    revision: int
    spec: TaskDefinitionSpec

    @property
    def ref(self) -> str:
        return f"{self.family}:{self.revision}"


class TaskState(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"


@dataclass(frozen=True, slots=True)
class TaskInfo:
    task_id: str
    state: TaskState
    healthy: bool
    port: int = 0
    pid: int = 0
    task_definition: str = ""
    restarts: int = 0
    started_at: datetime | None = None
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class ServiceState:
    name: str
    task_definition: str
    desired: int
    running: int
    healthy: int
    target_group: str = ""
    tasks: tuple[TaskInfo, ...] = ()

    @property
    def steady(self) -> bool:
        """Every desired task is running and healthy."""
        return self.healthy >= self.desired and self.running >= self.desired


class TargetState(StrEnum):
    INITIAL = "initial"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    DRAINING = "draining"
    UNUSED = "unused"


@dataclass(frozen=True, slots=True)
class TargetHealth:
    target_id: str
    address: str
    state: TargetState
    reason: str = ""


@dataclass(frozen=True, slots=True)
class TargetGroup:
    name: str
    health_check: HealthCheck
    targets: tuple[TargetHealth, ...] = ()

    @property
    def healthy_count(self) -> int:
        return sum(1 for t in self.targets if t.state is TargetState.HEALTHY)


@dataclass(frozen=True, slots=True)
class Listener:
    """A listener and where it forwards: target group name -> weight (0..256)."""

    name: str
    port: int
    forwards: tuple[tuple[str, int], ...]
    host: str = "127.0.0.1"  # where clients reach it (an ALB's DNS name on AWS)

    @property
    def target_group(self) -> str:
        """The target group receiving all (or most) traffic."""
        return max(self.forwards, key=lambda f: f[1])[0] if self.forwards else ""


class MetricName(StrEnum):
    REQUEST_COUNT = "RequestCount"
    HTTP_5XX = "HTTPCode_5XX"
    ERROR_RATE = "ErrorRate"  # percent of requests answered 5xx
    RESPONSE_TIME = "TargetResponseTime"  # milliseconds; use a percentile statistic
    HEALTHY_HOSTS = "HealthyHostCount"
    HEALTH_CHECK_FAILURES = "HealthCheckFailureRatio"  # percent of targets failing checks
    CPU = "CPUUtilization"  # percent
    MEMORY = "MemoryUtilization"  # percent
    DB_CONNECTIONS = "DatabaseConnections"  # percent of max_connections


class Statistic(StrEnum):
    AVERAGE = "Average"
    SUM = "Sum"
    MAXIMUM = "Maximum"
    MINIMUM = "Minimum"
    SAMPLE_COUNT = "SampleCount"
    P50 = "p50"
    P90 = "p90"
    P99 = "p99"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One HTTP request sent through a listener (smoke tests, traffic checks)."""

    url: str
    status: int  # 0 when no HTTP answer came back
    elapsed_ms: float
    body: str = ""
    error: str = ""

    @property
    def answered(self) -> bool:
        return self.status > 0


@dataclass(frozen=True, slots=True)
class MetricQuery:
    """Statistic S of metric M for scope X over [start, end) at period P (GetMetricData)."""

    metric: MetricName
    scope: str
    statistic: Statistic
    start: datetime
    end: datetime
    period_s: int = 60


@dataclass(frozen=True, slots=True)
class Datapoint:
    timestamp: datetime
    value: float
    samples: int = 0  # how many observations (requests, scrapes) the value summarises


@dataclass(frozen=True, slots=True)
class Measurement:
    """A metric query's result. A failed query is a value (``error``), not an exception."""

    query: MetricQuery
    datapoints: tuple[Datapoint, ...] = ()
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error
