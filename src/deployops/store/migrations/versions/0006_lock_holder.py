"""lock holder: pid, host and process start time, so a dead holder is recognised (DEP-7)

Revision ID: 0006
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("locks") as batch:
        batch.add_column(sa.Column("holder_pid", sa.Integer, nullable=True))
        batch.add_column(sa.Column("holder_host", sa.String(256), nullable=True))
        batch.add_column(sa.Column("holder_started_at", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("locks") as batch:
        batch.drop_column("holder_started_at")
        batch.drop_column("holder_host")
        batch.drop_column("holder_pid")
