"""The interfaces the engine needs from the world, as ``typing.Protocol`` classes.

Each driver implements one port for one platform (``drivers/local``, ``drivers/aws``), declares
what it can do in ``capabilities``, takes its clients and :class:`~deployops.clock.Clock` through
its constructor and does no I/O in ``__init__``. Capabilities a driver lacks are declared, not
faked: the engine checks them and says what is unsupported on that platform.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import ClassVar, Protocol, runtime_checkable

from deployops.clock import Clock
from deployops.domain.model import (
    HealthCheck,
    Listener,
    Measurement,
    MetricQuery,
    ProbeResult,
    ServiceState,
    TargetGroup,
    TaskDefinition,
    TaskDefinitionSpec,
)
from deployops.domain.native import NativeDeployment, NativeStart
from deployops.domain.rollout import ArmedRule, Rollout
from deployops.domain.secrets import SecretInfo, Stage
from deployops.domain.sketch import LatencySketch
from deployops.secret import Secret

__all__ = [
    "Clock",
    "Compute",
    "CredentialTarget",
    "LatencySketches",
    "Metrics",
    "NativeDeployments",
    "Notification",
    "Notifier",
    "PlatformRollouts",
    "Prober",
    "RotatingSecretStore",
    "SecretStore",
    "Traffic",
]


@runtime_checkable
class Compute(Protocol):
    """Task definitions and services (ECS; the local process supervisor)."""

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]]

    def register_task_definition(self, spec: TaskDefinitionSpec) -> TaskDefinition:
        """Register ``spec`` as the next revision of its family. Registering a spec equal to
        the latest revision returns that revision (idempotent)."""
        ...

    def describe_task_definition(self, ref: str) -> TaskDefinition:
        """``family:revision`` or ``family`` (latest). Raises ``NotFoundError``."""
        ...

    def create_service(
        self, name: str, *, task_definition: str, desired_count: int, target_group: str
    ) -> ServiceState:
        """Create the service, or update it to these settings if it exists (idempotent). Its
        tasks are registered in ``target_group`` as they start and removed as they stop."""
        ...

    def update_service(
        self, name: str, *, task_definition: str | None = None, desired_count: int | None = None
    ) -> ServiceState:
        """Change a running service. A new task definition replaces tasks in a rolling way
        (up to ``maximum_percent`` running, never below ``minimum_healthy_percent`` healthy)."""
        ...

    def describe_service(self, name: str) -> ServiceState | None:
        """The service's state, or ``None`` if it does not exist."""
        ...

    def delete_service(self, name: str) -> None:
        """Stop every task and remove the service. Absent is fine (idempotent)."""
        ...

    def list_services(self) -> Sequence[str]: ...


@runtime_checkable
class Traffic(Protocol):
    """Listeners and target groups (ELBv2; HAProxy through its runtime API)."""

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]]

    def create_target_group(self, name: str, *, health_check: HealthCheck) -> TargetGroup:
        """Create the group; existing with the same settings is fine (idempotent)."""
        ...

    def delete_target_group(self, name: str) -> None:
        """Delete the group. Refuses (``DriverError``) while a listener forwards to it."""
        ...

    def describe_target_group(self, name: str) -> TargetGroup | None: ...

    def list_target_groups(self) -> Sequence[str]: ...

    def describe_listener(self, name: str) -> Listener: ...

    def switch_listener(self, name: str, target_group: str) -> Listener:
        """Atomically send all new requests of the listener to ``target_group``; returns the
        listener as read back after the change (never a reload on HAProxy)."""
        ...

    def set_weights(self, name: str, weights: Mapping[str, int]) -> Listener:
        """Split the listener's traffic by weight (partial shift). Optional capability
        ``weights``."""
        ...


@runtime_checkable
class Prober(Protocol):
    """Sends one HTTP request to a URL (smoke tests through a listener, traffic checks)."""

    def get(self, url: str, *, timeout_s: float) -> ProbeResult:
        """Never raises for a failed request: the failure is ``ProbeResult.error``."""
        ...


@runtime_checkable
class NativeDeployments(Protocol):
    """A platform that carries out blue/green itself (ECS ``BLUE_GREEN`` in ``aws.mode:
    ecs-native``): deployops starts, watches, releases and rolls back its deployments.
    Traffic still reads the listeners (the platform moves them; deployops reads them back)."""

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]]

    def start(self, start: NativeStart) -> str:
        """Start the deployment, held by a pause hook after the test traffic shift; returns
        its id. Idempotent: a deployment of the same revision already running is returned."""
        ...

    def describe(self, deployment: str) -> NativeDeployment:
        """The deployment as the platform reports it now. Raises ``NotFoundError``."""
        ...

    def release(self, deployment: str, hook_id: str, *, rollback: bool = False) -> None:
        """Answer a pause hook: continue to the next stage, or roll back."""
        ...

    def stop(self, deployment: str, *, rollback: bool = True) -> None:
        """Stop the deployment; with ``rollback`` the platform returns traffic to the
        previous revision."""
        ...


@runtime_checkable
class PlatformRollouts(Protocol):
    """A platform whose rolling updates watch alarms and roll back by themselves (ECS rolling
    deployments with ``deploymentConfiguration.alarms``): deployops arms its rollback rules as
    the platform's alarms, starts the update with them, and watches the deployment."""

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]]

    def arm(self, service: str, rules: Sequence[ArmedRule]) -> Mapping[str, str]:
        """Put ``rules`` as alarms on ``service``'s own metrics (its target group and its
        tasks); returns each armed rule's alarm name by rule name (a rule the platform cannot
        judge is left out). Idempotent: alarms that already match are left alone."""
        ...

    def start(
        self, service: str, *, task_definition: str, desired_count: int, alarms: Sequence[str]
    ) -> str:
        """Start the rolling update of ``service`` to ``task_definition`` watched by
        ``alarms`` (rollback on); returns the deployment's id. Idempotent: a deployment of the
        same revision already under way is returned, not started again."""
        ...

    def describe(self, deployment: str) -> Rollout:
        """The deployment as the platform reports it now. Raises ``NotFoundError``."""
        ...


@runtime_checkable
class Metrics(Protocol):
    """Time series like CloudWatch GetMetricData."""

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]]

    def query(self, query: MetricQuery) -> Measurement:
        """Never raises for a failed query: the failure is ``Measurement.error``."""
        ...


@runtime_checkable
class LatencySketches(Protocol):
    """A metric source that also answers the latency *distribution* of a scope over a window
    (capability ``latency-sketch``; the local platform's collector keeps one per interval).
    The canary comparison needs the distribution, not only percentiles."""

    def latency_sketch(self, scope: str, start: datetime, end: datetime) -> LatencySketch | None:
        """Every request's latency (ms) completed in ``[start, end)``; ``None`` if unknown."""
        ...


class Notification(Protocol):
    @property
    def title(self) -> str: ...


@runtime_checkable
class Notifier(Protocol):
    """One notification channel (Slack, e-mail, PagerDuty)."""

    name: ClassVar[str]

    def send(
        self,
        *,
        severity: str,
        title: str,
        text: str,
        dedup_key: str,
        fields: Mapping[str, str],
        kind: str = "",
    ) -> None:
        """Deliver or raise ``DriverError``; callers record failures and carry on."""
        ...

    def resolve(
        self,
        *,
        dedup_key: str,
        title: str,
        text: str = "",
        severity: str = "info",
        fields: Mapping[str, str] | None = None,
        kind: str = "",
    ) -> None:
        """Say that what ``dedup_key`` reported is over (PagerDuty ``resolve``; a "resolved"
        message elsewhere). Raises ``DriverError`` like :meth:`send`."""
        ...


@runtime_checkable
class SecretStore(Protocol):
    """Where secret values live (Secrets Manager; ``.env.local``; an encrypted file)."""

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]]

    def get(self, name: str) -> Secret:
        """Raise ``NotFoundError`` naming the secret (never its value) if absent."""
        ...

    def list(self) -> Sequence[str]: ...


@runtime_checkable
class RotatingSecretStore(SecretStore, Protocol):
    """A store with versions and staging labels (``AWSCURRENT`` / ``AWSPENDING`` /
    ``AWSPREVIOUS``, SEC-3): what a rotation needs. Fetch-only stores (``.env.local``,
    environment variables) do not implement it and lack the ``rotate`` capability.

    Every method is idempotent, so a rotation resumed after a crash repeats a step safely.
    A ``version_id`` is a UUID (32 to 64 characters, as Secrets Manager's request token).
    """

    def get_version(
        self, name: str, *, stage: Stage = Stage.CURRENT, version_id: str | None = None
    ) -> Secret:
        """The value carrying ``stage`` (or exactly ``version_id``). ``NotFoundError`` if the
        secret or that stage is absent."""
        ...

    def describe(self, name: str) -> SecretInfo:
        """Versions and labels, never values. ``NotFoundError`` if absent."""
        ...

    def put_pending(self, name: str, value: Secret, *, version_id: str) -> None:
        """Store ``value`` as version ``version_id`` labelled ``AWSPENDING`` (creating the
        secret if new). The first version of a secret is also ``AWSCURRENT`` at once, as
        Secrets Manager labels it. Repeating it with the same id and value changes nothing."""
        ...

    def promote(self, name: str, version_id: str) -> None:
        """Make ``version_id`` current; the old current becomes previous
        (:func:`deployops.domain.secrets.promote_labels`)."""
        ...

    def discard_pending(self, name: str, version_id: str) -> None:
        """Remove ``AWSPENDING`` from ``version_id`` (a rotation that is put back). Absent is
        fine."""
        ...


@runtime_checkable
class CredentialTarget(Protocol):
    """Where a database password takes effect (PostgreSQL ``ALTER ROLE``; RDS the same)."""

    name: ClassVar[str]

    def set_password(self, user: str, password: Secret) -> None:
        """Give ``user`` this password (idempotent). ``DriverError`` naming the user only."""
        ...

    def check_login(self, user: str, password: Secret) -> None:
        """Log in as ``user`` and run a query; ``DriverError`` if that fails."""
        ...
