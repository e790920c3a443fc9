"""audit log hash chain (who, what, when, from where, outcome) and secret rotations (SEC-3, SEC-4)

Revision ID: 0004
Revises: 0007
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0007"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("source", sa.String(256), nullable=False, server_default=""))
        batch.add_column(sa.Column("outcome", sa.String(32), nullable=False, server_default="ok"))
        batch.add_column(sa.Column("prev_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(64), nullable=False, server_default=""))
    # Chain the entries written before this revision, oldest first, as StateStore.audit does.
    from deployops.domain.audit import GENESIS, entry_hash
    from deployops.store.store import audit_fields

    conn = op.get_bind()
    table = sa.table(
        "audit_log",
        sa.column("id", sa.Integer),
        sa.column("ts", TZ),
        sa.column("actor", sa.String),
        sa.column("action", sa.String),
        sa.column("target", sa.String),
        sa.column("detail", sa.Text),
        sa.column("source", sa.String),
        sa.column("outcome", sa.String),
        sa.column("prev_hash", sa.String),
        sa.column("hash", sa.String),
    )
    prev = GENESIS
    for row in conn.execute(sa.select(table).order_by(table.c.id)).mappings().all():
        fields = audit_fields(
            row["id"],
            row["ts"],
            row["actor"],
            row["action"],
            row["target"],
            json.loads(row["detail"] or "{}"),
            row["source"],
            row["outcome"],
        )
        digest = entry_hash(prev, fields)
        conn.execute(
            table.update().where(table.c.id == row["id"]).values(prev_hash=prev, hash=digest)
        )
        prev = digest
    op.create_index("ux_audit_log_prev_hash", "audit_log", ["prev_hash"], unique=True)
    op.create_table(
        "rotations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("secret", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("version_id", sa.String(64), nullable=False),
        sa.Column("previous_version_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("owner", sa.String(256), nullable=False, server_default=""),
        sa.Column("actor", sa.String(256), nullable=False, server_default=""),
        sa.Column("plan", sa.Text, nullable=False, server_default="[]"),
        sa.Column("done_steps", sa.Text, nullable=False, server_default="[]"),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ, nullable=True),
    )
    op.create_index("ix_rotations_environment_secret", "rotations", ["environment", "secret"])


def downgrade() -> None:
    op.drop_index("ix_rotations_environment_secret", "rotations")
    op.drop_table("rotations")
    op.drop_index("ux_audit_log_prev_hash", "audit_log")
    with op.batch_alter_table("audit_log") as batch:
        for name in ("hash", "prev_hash", "outcome", "source"):
            batch.drop_column(name)
