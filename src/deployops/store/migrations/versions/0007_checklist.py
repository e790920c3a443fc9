"""checklist entries: verdicts, sign-offs, overrides and decisions (CHK-1..CHK-3)

Revision ID: 0007
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0008"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "checklist_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", TZ, nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("deployment_id", sa.String(64), nullable=True),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("item", sa.String(128), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False, server_default=""),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("summary", sa.Text, nullable=False, server_default=""),
        sa.Column("source", sa.Text, nullable=False, server_default=""),
        sa.Column("evidence", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("ix_checklist_entries_deployment_id", "checklist_entries", ["deployment_id"])
    op.create_index(
        "ix_checklist_entries_release", "checklist_entries", ["environment", "service", "version"]
    )


def downgrade() -> None:
    op.drop_index("ix_checklist_entries_release", table_name="checklist_entries")
    op.drop_index("ix_checklist_entries_deployment_id", table_name="checklist_entries")
    op.drop_table("checklist_entries")
