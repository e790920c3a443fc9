"""measurements and judgements: every observed window of each colour and every comparison's
verdict, kept for the rollback measurements retention (incident reports, rules backtest)

Revision ID: 0009
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "measurements",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deployment_id", sa.String(64), nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("colour", sa.String(16), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(256), nullable=False),
        sa.Column("source", sa.String(64), nullable=False, server_default=""),
        sa.Column("start", TZ, nullable=False),
        sa.Column("end", TZ, nullable=False),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("latency", sa.Text, nullable=True),
        sa.Column("stats", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("ix_measurements_deployment", "measurements", ["deployment_id", "start"])
    op.create_index("ix_measurements_end", "measurements", ["end"])
    op.create_table(
        "judgements",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", TZ, nullable=False),
        sa.Column("deployment_id", sa.String(64), nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("source", sa.String(64), nullable=False, server_default=""),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
        sa.Column("held", sa.Integer, nullable=False, server_default="0"),
        sa.Column("decision", sa.String(16), nullable=False, server_default=""),
        sa.Column("decided_by", sa.String(256), nullable=False, server_default=""),
        sa.Column("decided_at", TZ, nullable=True),
        sa.Column("decision_reason", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_judgements_deployment_id", "judgements", ["deployment_id"])


def downgrade() -> None:
    op.drop_index("ix_judgements_deployment_id", table_name="judgements")
    op.drop_table("judgements")
    op.drop_index("ix_measurements_end", table_name="measurements")
    op.drop_index("ix_measurements_deployment", table_name="measurements")
    op.drop_table("measurements")
