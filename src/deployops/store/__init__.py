"""deployops' own state: operations (deployments and every other kind), steps, events,
decisions, locks, samples, audit, jobs, notices waiting for redelivery.

SQLite by default (``.deployops/state.db`` beside ``deployops.yaml``); PostgreSQL when
``DEPLOYOPS_DATABASE_URL`` or ``state.url`` says so. Schema changes are Alembic migrations.
"""

from deployops.store.records import (
    AlarmHistoryRecord,
    AlarmStateRecord,
    AuditRecord,
    ChecklistEntry,
    DecisionRecord,
    DeploymentRecord,
    EventRecord,
    JobRecord,
    JudgementRecord,
    LeaseInfo,
    LockInfo,
    MeasurementRecord,
    MetricSample,
    OperationRecord,
    PendingNotice,
    RotationRecord,
    ScalingActivity,
    StepRecord,
)
from deployops.store.store import StateStore

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
    "StateStore",
    "StepRecord",
]
