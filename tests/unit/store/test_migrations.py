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
