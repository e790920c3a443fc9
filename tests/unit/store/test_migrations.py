"""The Alembic migrations and ``schema.py`` describe the same tables (schema.py's promise):
a database built by the migrations has nothing autogenerate would add or drop."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

import deployops.store.store as store_module
from deployops.store import StateStore
from deployops.store.schema import metadata
from deployops.store.store import HEAD_REVISION


def test_migrated_database_matches_schema_module(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    StateStore.open(url).close()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert diff == []
    assert tables == set(metadata.tables) | {"alembic_version"}


def test_head_revision_is_the_newest_migration(tmp_path: Path) -> None:
    """HEAD_REVISION short-circuits ``migrate``; if a new migration were added without bumping
    it, existing databases would silently never be upgraded."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option(
        "script_location",
        str(Path(store_module.__file__).parent / "migrations"),
    )
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD_REVISION
    store = StateStore.open(f"sqlite:///{tmp_path / 's.db'}")
    try:
        assert store.current_revision() == HEAD_REVISION
    finally:
        store.close()


def _upgrade(url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(store_module.__file__).parent / "migrations"))
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def test_0003_carries_deployments_and_their_steps_over_as_operations(tmp_path: Path) -> None:
    """A database written before operations existed: its deployments keep their ids,
    statuses, versions, plans and steps, and `deployments list` shows them as before."""
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'old.db'}"
    _upgrade(url, "0002")
    engine = create_engine(url)
    plan = '[{"step": "SwitchListener", "phase": "switch", "listener": "web-prod", "target_group": "web-green", "previous_target_group": "web-blue"}]'  # noqa: E501
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO deployments (id, environment, service, version, strategy, kind, "
                "status, phase, owner, task_definition, target_group, previous_version, "
                "previous_task_definition, previous_target_group, reverts, plan, error, "
                "created_at, updated_at, finished_at) VALUES "
                "('dep-20261129-174501-0001', 'staging', 'web', '1.1.0', 'blue-green', "
                "'deploy', 'succeeded', 'done', 'ci@host:1', 'web:2', 'web-green', '1.0.0', "
                "'web:1', 'web-blue', NULL, :plan, '', '2026-11-29 17:45:01', "
                "'2026-11-29 17:46:01', '2026-11-29 17:46:01'), "
                "('dep-20261129-180000-0002', 'staging', 'web', '1.0.0', 'flip', 'rollback', "
                "'succeeded', 'done', 'ops@host:2', 'web:1', 'web-blue', '1.1.0', 'web:2', "
                "'web-green', 'dep-20261129-174501-0001', '[]', '', '2026-11-29 18:00:00', "
                "'2026-11-29 18:00:01', '2026-11-29 18:00:01')"
            ),
            {"plan": plan},
        )
        conn.execute(
            text(
                "INSERT INTO steps (deployment_id, seq, name, phase, params, status, result, "
                "error, started_at, finished_at) VALUES ('dep-20261129-174501-0001', 0, "
                "'SwitchListener', 'switch', '{}', 'succeeded', '{\"ms\": 1.5}', '', "
                "'2026-11-29 17:45:30', '2026-11-29 17:45:31')"
            )
        )
    engine.dispose()

    store = StateStore.open(url)  # migrates to the head
    try:
        assert store.current_revision() == HEAD_REVISION
        deps = store.list_deployments(environment="staging", service="web")
        assert [(d.id, d.kind, d.version, d.status) for d in deps] == [
            ("dep-20261129-180000-0002", "rollback", "1.0.0", "succeeded"),
            ("dep-20261129-174501-0001", "deploy", "1.1.0", "succeeded"),
        ]
        first = store.require_deployment("dep-20261129-1745")
        assert (first.task_definition, first.previous_task_definition) == ("web:2", "web:1")
        assert (first.target_group, first.previous_target_group) == ("web-green", "web-blue")
        assert first.plan[0]["step"] == "SwitchListener" and first.owner == "ci@host:1"
        assert deps[0].reverts == first.id
        (step,) = store.steps_for(first.id)
        assert (step.name, step.status, step.result) == ("SwitchListener", "succeeded", {"ms": 1.5})
        op = store.get_operation(first.id)
        assert op is not None and op.plan["strategy"] == "blue-green" and op.target == "web"
        # New steps get fresh ids after the copied ones.
        store.record_step_intent(
            first.id, 1, "Observe", phase="switch", params={}, now=first.created_at
        )
        assert [s.seq for s in store.steps_for(first.id)] == [0, 1]
    finally:
        store.close()
