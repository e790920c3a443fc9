"""alarm states and history, scaling activities (MON-1, IAC-5)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alarm_states",
        sa.Column("environment", sa.String(64), primary_key=True),
        sa.Column("service", sa.String(128), primary_key=True),
        sa.Column("alarm", sa.String(128), primary_key=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("since", TZ, nullable=False),
        sa.Column("evaluated_at", TZ, nullable=False),
    )
    op.create_table(
        "alarm_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", TZ, nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("alarm", sa.String(128), nullable=False),
        sa.Column("previous", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("action", sa.String(64), nullable=False, server_default=""),
        sa.Column("severity", sa.String(16), nullable=False, server_default=""),
        sa.Column("evidence", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("ix_alarm_history_alarm", "alarm_history", ["environment", "alarm", "ts"])
    op.create_table(
        "scaling_activities",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", TZ, nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("compute_service", sa.String(256), nullable=False),
        sa.Column("cause", sa.String(128), nullable=False),
        sa.Column("previous", sa.Integer, nullable=False),
        sa.Column("desired", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
    )
    op.create_index(
        "ix_scaling_activities_env_service", "scaling_activities", ["environment", "service", "ts"]
    )


def downgrade() -> None:
    op.drop_index("ix_scaling_activities_env_service", table_name="scaling_activities")
    op.drop_table("scaling_activities")
    op.drop_index("ix_alarm_history_alarm", table_name="alarm_history")
    op.drop_table("alarm_history")
    op.drop_table("alarm_states")
