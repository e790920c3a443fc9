"""initial tables

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("strategy", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False, server_default="deploy"),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("phase", sa.String(64), nullable=False, server_default=""),
        sa.Column("owner", sa.String(256), nullable=False, server_default=""),
        sa.Column("task_definition", sa.String(256), nullable=False, server_default=""),
        sa.Column("target_group", sa.String(256), nullable=False, server_default=""),
        sa.Column("previous_version", sa.String(128), nullable=False, server_default=""),
        sa.Column("previous_task_definition", sa.String(256), nullable=False, server_default=""),
        sa.Column("previous_target_group", sa.String(256), nullable=False, server_default=""),
        sa.Column("reverts", sa.String(64), nullable=True),
        sa.Column("plan", sa.Text, nullable=False, server_default="[]"),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("finished_at", TZ, nullable=True),
    )
    op.create_index(
        "ix_deployments_env_service", "deployments", ["environment", "service", "created_at"]
    )
    op.create_table(
        "steps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deployment_id", sa.String(64), sa.ForeignKey("deployments.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("phase", sa.String(64), nullable=False, server_default=""),
        sa.Column("params", sa.Text, nullable=False, server_default="{}"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.Text, nullable=False, server_default="{}"),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ, nullable=True),
        sa.UniqueConstraint("deployment_id", "seq", name="uq_steps_deployment_seq"),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", TZ, nullable=False),
        sa.Column("deployment_id", sa.String(64), nullable=True),
        sa.Column("environment", sa.String(64), nullable=False, server_default=""),
        sa.Column("service", sa.String(128), nullable=False, server_default=""),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("level", sa.String(16), nullable=False, server_default="info"),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("ix_events_deployment_id", "events", ["deployment_id"])
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", TZ, nullable=False),
        sa.Column("deployment_id", sa.String(64), nullable=True),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("evidence", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("ix_decisions_deployment_id", "decisions", ["deployment_id"])
    op.create_table(
        "locks",
        sa.Column("key", sa.String(256), primary_key=True),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("deployment_id", sa.String(64), nullable=True),
        sa.Column("acquired_at", TZ, nullable=False),
    )
    op.create_table(
        "metric_samples",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(256), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("sketch", sa.Text, nullable=True),
    )
    op.create_index(
        "ix_metric_samples_scope_metric_ts", "metric_samples", ["scope", "metric", "ts"]
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", TZ, nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("target", sa.String(256), nullable=False, server_default=""),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("dedup_key", sa.String(256), nullable=False, unique=True),
        sa.Column("due_at", TZ, nullable=False),
        sa.Column("payload", sa.Text, nullable=False, server_default="{}"),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("claimed_by", sa.String(256), nullable=True),
        sa.Column("claimed_at", TZ, nullable=True),
        sa.Column("done_at", TZ, nullable=True),
        sa.Column("result", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_jobs_due_at", "jobs", ["due_at"])


def downgrade() -> None:
    for name in (
        "jobs",
        "audit_log",
        "metric_samples",
        "locks",
        "decisions",
        "events",
        "steps",
        "deployments",
    ):
        op.drop_table(name)
