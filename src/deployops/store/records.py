"""Rows of the state store as frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "AlarmHistoryRecord",
    "AlarmStateRecord",
    "AuditRecord",
    "ChecklistEntry",
    "DecisionRecord",
    "DeploymentRecord",
    "EventRecord",
    "JobRecord",
    "JudgementRecord",
    "LeaseInfo",
    "LockInfo",
    "MeasurementRecord",
    "MetricSample",
    "OperationRecord",
    "PendingNotice",
    "RotationRecord",
    "ScalingActivity",
    "StepRecord",
]

# The operation kinds a deployment record stands for (``deployops deployments`` lists them).
DEPLOYMENT_KINDS = ("deploy", "rollback")

# The fields of a deployment kept in an operation's ``detail`` (everything a deploy adds to
# the generic operation).
_DEPLOYMENT_DETAIL = (
    "version",
    "strategy",
    "task_definition",
    "target_group",
    "previous_version",
    "previous_task_definition",
    "previous_target_group",
)


@dataclass(frozen=True, slots=True)
class OperationRecord:
    """One operation of any kind (deploy, rollback, restore, drill, rotate, gate).

    ``target`` is what the operation changes (a service, a database, a secret); the lock is
    held per ``(environment, target)``. ``plan`` is the frozen plan
    (:meth:`deployops.domain.plan.Plan.to_record`); ``detail`` holds what the kind adds
    (a deployment's versions and target groups).
    """

    id: str
    kind: str
    environment: str
    target: str
    status: str  # running | succeeded | failed | rolled_back
    created_at: datetime
    updated_at: datetime
    phase: str = ""
    owner: str = ""
    reverts: str | None = None
    plan: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    finished_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


@dataclass(frozen=True, slots=True)
class DeploymentRecord:
    id: str
    environment: str
    service: str
    version: str
    strategy: str
    status: str
    created_at: datetime
    updated_at: datetime
    kind: str = "deploy"
    phase: str = ""
    owner: str = ""
    task_definition: str = ""
    target_group: str = ""
    previous_version: str = ""
    previous_task_definition: str = ""
    previous_target_group: str = ""
    reverts: str | None = None
    plan: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    finished_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out

    def to_operation(self, *, settings: dict[str, Any] | None = None) -> OperationRecord:
        """This deployment as the generic operation the store keeps."""
        return OperationRecord(
            id=self.id,
            kind=self.kind,
            environment=self.environment,
            target=self.service,
            status=self.status,
            created_at=self.created_at,
            updated_at=self.updated_at,
            phase=self.phase,
            owner=self.owner,
            reverts=self.reverts,
            plan={
                "strategy": self.strategy,
                "steps": list(self.plan),
                "target_group": self.target_group,
                "previous_target_group": self.previous_target_group,
                "notes": [],
                "settings": dict(settings or {}),
            },
            detail={name: getattr(self, name) for name in _DEPLOYMENT_DETAIL},
            error=self.error,
            finished_at=self.finished_at,
        )

    @classmethod
    def from_operation(cls, op: OperationRecord) -> DeploymentRecord:
        d = op.detail
        return cls(
            id=op.id,
            environment=op.environment,
            service=op.target,
            version=str(d.get("version", "")),
            strategy=str(d.get("strategy", op.plan.get("strategy", ""))),
            status=op.status,
            created_at=op.created_at,
            updated_at=op.updated_at,
            kind=op.kind,
            phase=op.phase,
            owner=op.owner,
            task_definition=str(d.get("task_definition", "")),
            target_group=str(d.get("target_group", "")),
            previous_version=str(d.get("previous_version", "")),
            previous_task_definition=str(d.get("previous_task_definition", "")),
            previous_target_group=str(d.get("previous_target_group", "")),
            reverts=op.reverts,
            plan=list(op.plan.get("steps", [])),
            error=op.error,
            finished_at=op.finished_at,
        )


@dataclass(frozen=True, slots=True)
class StepRecord:
    operation_id: str
    seq: int
    name: str
    status: str
    started_at: datetime
    phase: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EventRecord:
    ts: datetime
    kind: str
    message: str
    level: str = "info"
    deployment_id: str | None = None
    environment: str = ""
    service: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    id: int = 0


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    ts: datetime
    rule: str
    verdict: str
    action: str
    deployment_id: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    id: int = 0


@dataclass(frozen=True, slots=True)
class LockInfo:
    key: str
    owner: str
    reason: str
    acquired_at: datetime
    deployment_id: str | None = None
    holder_pid: int | None = None
    holder_host: str | None = None
    holder_started_at: float | None = None


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """Who acts for ``name`` and until when (POSIX seconds) unless renewed."""

    name: str
    holder: str
    acquired_at: datetime
    expires_at: float


@dataclass(frozen=True, slots=True)
class PendingNotice:
    """A notice not delivered on ``channel`` while its command ran, kept for the controller
    to retry. ``status``: ``pending`` (retried at ``next_attempt_at``), ``delivered`` or
    ``expired``; ``notice`` is the notice's fields (``Notice`` as JSON)."""

    id: int
    environment: str
    channel: str
    action: str
    title: str
    status: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    updated_at: datetime
    notice: dict[str, Any] = field(default_factory=dict)
    last_error: str = ""
    rounds: int = 0  # tries by the controller so far
    claimed_by: str | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MetricSample:
    scope: str
    metric: str
    ts: float
    value: float
    count: int = 0
    sketch: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    ts: datetime
    actor: str
    action: str
    target: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # from where: host and terminal, or the API client's address
    outcome: str = "ok"  # ok | failed | refused
    id: int | None = None  # set by the store
    prev_hash: str | None = None  # set by the store (the chain, SEC-4)
    hash: str = ""


@dataclass(frozen=True, slots=True)
class RotationRecord:
    """One secret rotation (SEC-3): its frozen plan (step dicts) and the steps done."""

    id: str
    environment: str
    secret: str
    kind: str
    status: str  # running | completed | reverted | failed
    version_id: str
    started_at: datetime
    previous_version_id: str = ""
    owner: str = ""
    actor: str = ""
    plan: list[dict[str, Any]] = field(default_factory=list)
    done_steps: list[str] = field(default_factory=list)
    error: str = ""
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: int
    kind: str
    dedup_key: str
    due_at: datetime
    status: str
    payload: dict[str, Any] = field(default_factory=dict)
    claimed_by: str | None = None
    result: str = ""


@dataclass(frozen=True, slots=True)
class AlarmStateRecord:
    environment: str
    service: str
    alarm: str
    state: str
    since: datetime
    evaluated_at: datetime
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AlarmHistoryRecord:
    ts: datetime
    environment: str
    service: str
    alarm: str
    previous: str
    state: str
    reason: str = ""
    action: str = ""
    severity: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    id: int = 0


@dataclass(frozen=True, slots=True)
class ScalingActivity:
    ts: datetime
    environment: str
    service: str
    compute_service: str
    cause: str
    previous: int
    desired: int
    status: str
    reason: str = ""
    error: str = ""
    id: int = 0


@dataclass(frozen=True, slots=True)
class ChecklistEntry:
    """One checklist verdict, sign-off, override or decision (CHK-1..CHK-3)."""

    ts: datetime
    environment: str
    service: str
    version: str
    stage: str
    item: str
    status: str
    deployment_id: str | None = None
    actor: str = ""
    note: str = ""
    summary: str = ""
    source: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    id: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


@dataclass(frozen=True, slots=True)
class MeasurementRecord:
    """One observed window of one colour of a deployment: what it served in ``[start, end)``.

    ``colour`` is ``blue`` or ``green`` (``scope`` the target group), ``role`` ``new`` (the
    version being deployed) or ``previous`` (the one it replaces); a canary step stores
    ``canary`` and ``baseline``. ``latency`` is a
    :class:`~deployops.domain.sketch.LatencySketch` as JSON (milliseconds; every percentile
    within 1 %), ``stats`` the window's other numbers (latency mean and percentiles in ms,
    gauges such as ``CPUUtilization`` as ``{"Average": .., "Maximum": ..}``). Enough to replay
    the rollback rules and the canary comparison later (``deployops rules backtest``).
    """

    deployment_id: str
    environment: str
    service: str
    colour: str
    role: str  # new | previous (observation), canary | baseline (canary steps)
    scope: str
    source: str  # observe | canary step N | ...
    start: datetime
    end: datetime
    requests: int
    errors: int
    latency: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    id: int = 0


@dataclass(frozen=True, slots=True)
class JudgementRecord:
    """One comparison of the new colour with the previous one and its verdict.

    ``detail`` is :meth:`deployops.domain.judge.Judgement.to_dict` (every metric's numbers
    and reason) plus the window it judged. A marginal verdict that holds the rollout has
    ``held``; ``decision`` is then ``continue``, ``rollback`` or ``timeout`` once made,
    by ``decided_by`` at ``decided_at`` with ``decision_reason``.
    """

    ts: datetime
    deployment_id: str
    environment: str
    service: str
    source: str
    verdict: str  # pass | marginal | fail
    score: float
    detail: dict[str, Any] = field(default_factory=dict)
    held: bool = False
    decision: str = ""
    decided_by: str = ""
    decided_at: datetime | None = None
    decision_reason: str = ""
    id: int = 0
