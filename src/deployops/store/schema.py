"""The state store's tables (SQLAlchemy Core). Changes go through an Alembic migration in
``migrations/versions``; ``tests/unit/store/test_migrations.py`` holds the two equal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "alarm_history",
    "alarm_states",
    "audit_log",
    "checklist_entries",
    "decisions",
    "events",
    "jobs",
    "judgements",
    "leases",
    "locks",
    "measurements",
    "metadata",
    "metric_samples",
    "operations",
    "pending_notices",
    "rotations",
    "scaling_activities",
    "steps",
]


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored and returned as UTC on every backend. SQLite keeps no offset, so an
    aware non-UTC time (e.g. +09:00) would come back shifted by its offset; naive values are
    taken as UTC (everything in deployops is)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

# Every operation that changes production (deploy, rollback, restore, drill, rotate, gate):
# one row each, whatever its kind; ``plan`` is the frozen plan, ``detail`` what the kind adds.
operations = Table(
    "operations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("environment", String(64), nullable=False),
    Column("target", String(128), nullable=False),
    Column("status", String(32), nullable=False),
    Column("phase", String(64), nullable=False, server_default=""),
    Column("owner", String(256), nullable=False, server_default=""),
    Column("reverts", String(64), nullable=True),
    Column("plan", Text, nullable=False, server_default="{}"),
    Column("detail", Text, nullable=False, server_default="{}"),
    Column("error", Text, nullable=False, server_default=""),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    Index("ix_operations_env_target", "environment", "target", "created_at"),
    Index("ix_operations_kind_status", "kind", "status"),
)

steps = Table(
    "steps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("operation_id", String(64), ForeignKey("operations.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("name", String(64), nullable=False),
    Column("phase", String(64), nullable=False, server_default=""),
    Column("params", Text, nullable=False, server_default="{}"),
    Column("status", String(16), nullable=False),  # started | succeeded | failed
    Column("result", Text, nullable=False, server_default="{}"),
    Column("error", Text, nullable=False, server_default=""),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    UniqueConstraint("operation_id", "seq", name="uq_steps_operation_seq"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", UtcDateTime(), nullable=False),
    Column("deployment_id", String(64), nullable=True, index=True),
    Column("environment", String(64), nullable=False, server_default=""),
    Column("service", String(128), nullable=False, server_default=""),
    Column("kind", String(64), nullable=False),
    Column("level", String(16), nullable=False, server_default="info"),
    Column("message", Text, nullable=False),
    Column("data", Text, nullable=False, server_default="{}"),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", UtcDateTime(), nullable=False),
    Column("deployment_id", String(64), nullable=True, index=True),
    Column("rule", String(128), nullable=False),
    Column("verdict", String(32), nullable=False),
    Column("action", String(64), nullable=False),
    Column("evidence", Text, nullable=False, server_default="{}"),
)

locks = Table(
    "locks",
    metadata,
    Column("key", String(256), primary_key=True),
    Column("owner", String(256), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("deployment_id", String(64), nullable=True),
    Column("acquired_at", UtcDateTime(), nullable=False),
    # The holding process (migration 0006): a holder that died is recognised on its host.
    Column("holder_pid", Integer, nullable=True),
    Column("holder_host", String(256), nullable=True),
    Column("holder_started_at", Float, nullable=True),
)

# One controller acts per lease name (``controller/<environment>``): the holder renews it every
# tick; another controller takes it over once ``expires_at`` (POSIX seconds) has passed.
leases = Table(
    "leases",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("holder", String(256), nullable=False),
    Column("acquired_at", UtcDateTime(), nullable=False),
    Column("expires_at", Float, nullable=False),
)

# What the planning of an environment reads instead of deployops.yaml, one JSON value per key:
# ``database/<service>`` is the database endpoint a restore or a failover repointed the
# application to (the next deploy keeps it).
environment_state = Table(
    "environment_state",
    metadata,
    Column("environment", String(128), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("value", Text, nullable=False),
    Column("source", String(256), nullable=False, server_default=""),
    Column("updated_at", UtcDateTime(), nullable=False),
)

metric_samples = Table(
    "metric_samples",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(256), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("ts", Float, nullable=False),  # POSIX seconds, start of the sample interval
    Column("value", Float, nullable=False),
    Column("count", Integer, nullable=False, server_default="0"),
    Column("sketch", Text, nullable=True),  # JSON of a mergeable latency sketch
    Index("ix_metric_samples_scope_metric_ts", "scope", "metric", "ts"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", UtcDateTime(), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("action", String(128), nullable=False),
    Column("target", String(256), nullable=False, server_default=""),
    Column("detail", Text, nullable=False, server_default="{}"),
    # SEC-4: from where, outcome, and the hash chain (domain/audit.py)
    Column("source", String(256), nullable=False, server_default=""),
    Column("outcome", String(32), nullable=False, server_default="ok"),
    Column("prev_hash", String(64), nullable=True),
    Column("hash", String(64), nullable=False, server_default=""),
    Index("ux_audit_log_prev_hash", "prev_hash", unique=True),
)

# SEC-3: one row per secret rotation; its frozen plan and the steps done so far
rotations = Table(
    "rotations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("environment", String(64), nullable=False),
    Column("secret", String(256), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("version_id", String(64), nullable=False),
    Column("previous_version_id", String(64), nullable=False, server_default=""),
    Column("owner", String(256), nullable=False, server_default=""),
    Column("actor", String(256), nullable=False, server_default=""),
    Column("plan", Text, nullable=False, server_default="[]"),
    Column("done_steps", Text, nullable=False, server_default="[]"),
    Column("error", Text, nullable=False, server_default=""),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    Index("ix_rotations_environment_secret", "environment", "secret"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("dedup_key", String(256), nullable=False, unique=True),
    Column("due_at", UtcDateTime(), nullable=False, index=True),
    Column("payload", Text, nullable=False, server_default="{}"),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("claimed_by", String(256), nullable=True),
    Column("claimed_at", UtcDateTime(), nullable=True),
    Column("done_at", UtcDateTime(), nullable=True),
    Column("result", Text, nullable=False, server_default=""),
)

# MON-1: the current state of each alarm, and every state change with its evidence.
alarm_states = Table(
    "alarm_states",
    metadata,
    Column("environment", String(64), primary_key=True),
    Column("service", String(128), primary_key=True),
    Column("alarm", String(128), primary_key=True),
    Column("state", String(32), nullable=False),  # OK | ALARM | INSUFFICIENT_DATA
    Column("reason", Text, nullable=False, server_default=""),
    Column("since", UtcDateTime(), nullable=False),
    Column("evaluated_at", UtcDateTime(), nullable=False),
)

alarm_history = Table(
    "alarm_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", UtcDateTime(), nullable=False),
    Column("environment", String(64), nullable=False),
    Column("service", String(128), nullable=False),
    Column("alarm", String(128), nullable=False),
    Column("previous", String(32), nullable=False),
    Column("state", String(32), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("action", String(64), nullable=False, server_default=""),
    Column("severity", String(16), nullable=False, server_default=""),
    Column("evidence", Text, nullable=False, server_default="{}"),
    Index("ix_alarm_history_alarm", "environment", "alarm", "ts"),
)

# IAC-5: every scaling activity with its cause and reason.
scaling_activities = Table(
    "scaling_activities",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", UtcDateTime(), nullable=False),
    Column("environment", String(64), nullable=False),
    Column("service", String(128), nullable=False),
    Column("compute_service", String(256), nullable=False),
    Column("cause", String(128), nullable=False),  # target_tracking | alarm:NAME
    Column("previous", Integer, nullable=False),
    Column("desired", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # succeeded | failed
    Column("reason", Text, nullable=False, server_default=""),
    Column("error", Text, nullable=False, server_default=""),
    Index("ix_scaling_activities_env_service", "environment", "service", "ts"),
)

# CHK-1..CHK-3: every checklist verdict, sign-off, override and decision, with its evidence.
# Pre-deploy sign-offs are made for a release (environment, service, version) before its
# deployment exists; the deploy links them to its deployment id when it starts.
checklist_entries = Table(
    "checklist_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", UtcDateTime(), nullable=False),
    Column("environment", String(64), nullable=False),
    Column("service", String(128), nullable=False),
    Column("version", String(128), nullable=False),
    Column("deployment_id", String(64), nullable=True, index=True),
    Column("stage", String(16), nullable=False),  # pre | during | post
    Column("item", String(128), nullable=False),
    # passed | failed | signed | overridden | warned | pending | not_required | decided
    Column("status", String(32), nullable=False),
    Column("actor", String(256), nullable=False, server_default=""),
    Column("note", Text, nullable=False, server_default=""),
    Column("summary", Text, nullable=False, server_default=""),
    Column("source", Text, nullable=False, server_default=""),
    Column("evidence", Text, nullable=False, server_default="{}"),
    Index("ix_checklist_entries_release", "environment", "service", "version"),
)

# Issue 19: every observed window of each colour of a deployment (migration 0009), kept for
# ``rollback.measurements_retention`` so the rules and the judge can be replayed (backtest).
measurements = Table(
    "measurements",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deployment_id", String(64), nullable=False),
    Column("environment", String(64), nullable=False),
    Column("service", String(128), nullable=False),
    Column("colour", String(16), nullable=False),
    Column("role", String(16), nullable=False),  # new | previous
    Column("scope", String(256), nullable=False),
    Column("source", String(64), nullable=False, server_default=""),
    Column("start", UtcDateTime(), nullable=False),
    Column("end", UtcDateTime(), nullable=False),
    Column("requests", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("latency", Text, nullable=True),  # JSON of a LatencySketch (ms)
    Column("stats", Text, nullable=False, server_default="{}"),
    Index("ix_measurements_deployment", "deployment_id", "start"),
    Index("ix_measurements_end", "end"),
)

# Each comparison's verdict, score and per-metric reasons; a held marginal one gets the
# decision (``deployops decide``) or the timeout that ended the hold.
judgements = Table(
    "judgements",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", UtcDateTime(), nullable=False),
    Column("deployment_id", String(64), nullable=False, index=True),
    Column("environment", String(64), nullable=False),
    Column("service", String(128), nullable=False),
    Column("source", String(64), nullable=False, server_default=""),
    Column("verdict", String(16), nullable=False),
    Column("score", Float, nullable=False),
    Column("detail", Text, nullable=False, server_default="{}"),
    Column("held", Integer, nullable=False, server_default="0"),
    Column("decision", String(16), nullable=False, server_default=""),
    Column("decided_by", String(256), nullable=False, server_default=""),
    Column("decided_at", UtcDateTime(), nullable=True),
    Column("decision_reason", Text, nullable=False, server_default=""),
)

# Notices not delivered while their command ran (a receiver down or hanging): one row per notice
# and channel, retried by the controller until ``delivered`` or ``expired`` (migration 0013).
# ``notice`` is the notice as JSON (what the engine said; never a channel's secret), and
# ``last_error`` the channel's scrubbed error.
pending_notices = Table(
    "pending_notices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("environment", String(64), nullable=False, server_default=""),
    Column("channel", String(64), nullable=False),
    Column("action", String(16), nullable=False),  # trigger | resolve
    Column("title", Text, nullable=False, server_default=""),
    Column("notice", Text, nullable=False, server_default="{}"),
    Column("status", String(16), nullable=False),  # pending | delivered | expired
    Column("attempts", Integer, nullable=False, server_default="0"),
    # tries by the controller so far: the exponent of its backoff
    Column("rounds", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("claimed_by", String(256), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    Index("ix_pending_notices_due", "status", "next_attempt_at"),
)
