"""operations: every kind of operation in one table; steps belong to an operation

Deployments become operations of kind ``deploy`` / ``rollback``: the same ids (``dep-...``),
statuses and times; versions and target groups move into ``detail``, the stored step list into
``plan.steps``. Steps keep their rows and point at the operation.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)

_DETAIL = (
    "version",
    "strategy",
    "task_definition",
    "target_group",
    "previous_version",
    "previous_task_definition",
    "previous_target_group",
)
_COMMON = ("id", "kind", "environment", "status", "phase", "owner", "reverts", "error")
_TIMES = ("created_at", "updated_at", "finished_at")
_STEP_COLUMNS = (
    "id",
    "seq",
    "name",
    "phase",
    "params",
    "status",
    "result",
    "error",
    "started_at",
    "finished_at",
)


def _operations_table() -> None:
    op.create_table(
        "operations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("phase", sa.String(64), nullable=False, server_default=""),
        sa.Column("owner", sa.String(256), nullable=False, server_default=""),
        sa.Column("reverts", sa.String(64), nullable=True),
        sa.Column("plan", sa.Text, nullable=False, server_default="{}"),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("finished_at", TZ, nullable=True),
    )
    op.create_index(
        "ix_operations_env_target", "operations", ["environment", "target", "created_at"]
    )
    op.create_index("ix_operations_kind_status", "operations", ["kind", "status"])


def _steps_table(name: str, parent: str, fk: str, unique: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(fk, sa.String(64), sa.ForeignKey(f"{parent}.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("phase", sa.String(64), nullable=False, server_default=""),
        sa.Column("params", sa.Text, nullable=False, server_default="{}"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.Text, nullable=False, server_default="{}"),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ, nullable=True),
        sa.UniqueConstraint(fk, "seq", name=unique),
    )


def _copy_steps(source: str, target: str, old_fk: str, new_fk: str) -> None:
    bind = op.get_bind()
    src = sa.table(source, *(sa.column(c) for c in (*_STEP_COLUMNS, old_fk)))
    dst = sa.table(target, *(sa.column(c) for c in (*_STEP_COLUMNS, new_fk)))
    rows = [dict(r) for r in bind.execute(sa.select(src)).mappings()]
    for row in rows:
        row[new_fk] = row.pop(old_fk)
    if rows:
        bind.execute(sa.insert(dst), rows)


def upgrade() -> None:
    bind = op.get_bind()
    _operations_table()
    old = sa.table("deployments", *(sa.column(c) for c in (*_COMMON, *_TIMES, *_DETAIL)))
    old_plan = sa.table("deployments", sa.column("id"), sa.column("service"), sa.column("plan"))
    new = sa.table(
        "operations",
        *(sa.column(c) for c in (*_COMMON, *_TIMES, "target", "plan", "detail")),
    )
    extra = {
        r["id"]: (r["service"], r["plan"]) for r in bind.execute(sa.select(old_plan)).mappings()
    }
    rows: list[dict[str, Any]] = []
    for r in bind.execute(sa.select(old)).mappings():
        service, plan_text = extra[r["id"]]
        detail = {k: r[k] or "" for k in _DETAIL}
        rows.append(
            {
                **{k: r[k] for k in (*_COMMON, *_TIMES)},
                "target": service,
                "detail": json.dumps(detail, sort_keys=True),
                "plan": json.dumps(
                    {
                        "strategy": detail["strategy"],
                        "steps": json.loads(plan_text or "[]"),
                        "target_group": detail["target_group"],
                        "previous_target_group": detail["previous_target_group"],
                        "notes": [],
                        "settings": {},
                    },
                    sort_keys=True,
                ),
            }
        )
    if rows:
        bind.execute(sa.insert(new), rows)
    _steps_table("steps_v3", "operations", "operation_id", "uq_steps_operation_seq")
    _copy_steps("steps", "steps_v3", "deployment_id", "operation_id")
    op.drop_table("steps")
    op.drop_index("ix_deployments_env_service", table_name="deployments")
    op.drop_table("deployments")
    op.rename_table("steps_v3", "steps")
    if bind.dialect.name == "postgresql":
        # Keep the id sequence after the copied rows (the rows were inserted with their ids).
        op.execute(
            "SELECT setval(pg_get_serial_sequence('steps', 'id'), "
            "COALESCE((SELECT MAX(id) FROM steps), 0) + 1, false)"
        )


def downgrade() -> None:
    bind = op.get_bind()
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
    src = sa.table(
        "operations", *(sa.column(c) for c in (*_COMMON, *_TIMES, "target", "plan", "detail"))
    )
    dst = sa.table(
        "deployments",
        *(sa.column(c) for c in (*_COMMON, *_TIMES, *_DETAIL, "service", "plan")),
    )
    rows: list[dict[str, Any]] = []
    for r in bind.execute(sa.select(src).where(src.c.kind.in_(["deploy", "rollback"]))).mappings():
        detail = json.loads(r["detail"] or "{}")
        plan = json.loads(r["plan"] or "{}")
        rows.append(
            {
                **{k: r[k] for k in (*_COMMON, *_TIMES)},
                **{k: str(detail.get(k, "")) for k in _DETAIL},
                "service": r["target"],
                "plan": json.dumps(plan.get("steps", []), sort_keys=True),
            }
        )
    if rows:
        bind.execute(sa.insert(dst), rows)
    _steps_table("steps_v2", "deployments", "deployment_id", "uq_steps_deployment_seq")
    kept = sa.table("deployments", sa.column("id"))
    ids = {r[0] for r in bind.execute(sa.select(kept.c.id))}
    steps = sa.table("steps", *(sa.column(c) for c in (*_STEP_COLUMNS, "operation_id")))
    copied = []
    for r in bind.execute(sa.select(steps)).mappings():
        if r["operation_id"] in ids:
            row = dict(r)
            row["deployment_id"] = row.pop("operation_id")
            copied.append(row)
    if copied:
        v2 = sa.table("steps_v2", *(sa.column(c) for c in (*_STEP_COLUMNS, "deployment_id")))
        bind.execute(sa.insert(v2), copied)
    op.drop_table("steps")
    op.drop_index("ix_operations_kind_status", table_name="operations")
    op.drop_index("ix_operations_env_target", table_name="operations")
    op.drop_table("operations")
    op.rename_table("steps_v2", "steps")
