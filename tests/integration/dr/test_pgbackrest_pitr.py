"""DR-2 / DR-4 with the real PostgreSQL 15 and pgBackRest: point-in-time restore into a new
instance keeps exactly the rows committed before the target; a deleted data directory is
recovered from the latest backup plus the archived WAL; the running primary is untouched."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from deployops.domain.backup import DbInstance, RestoreTarget
from deployops.drivers.local.postgres import LocalPostgres
from deployops.errors import BackupError, NotFoundError
from tests.integration.dr.conftest import APP_PASSWORD

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_TABLE = (
    "CREATE TABLE markers (id serial PRIMARY KEY, body text, "
    "created_at timestamptz DEFAULT clock_timestamp())"
)


def _app(db: LocalPostgres, inst: DbInstance) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=inst.host,
        port=inst.port,
        dbname="app",
        user="app",
        password=APP_PASSWORD,
        autocommit=True,
    )


def _insert(conn: psycopg.Connection[tuple[object, ...]], body: str) -> datetime:
    row = conn.execute(
        "INSERT INTO markers (body) VALUES (%s) RETURNING created_at", (body,)
    ).fetchone()
    assert row is not None
    assert isinstance(row[0], datetime)
    return row[0]


def _bodies(inst: DbInstance) -> list[str]:
    with psycopg.connect(
        host=inst.host, port=inst.port, dbname="app", user="app", password=APP_PASSWORD
    ) as conn:
        return [str(r[0]) for r in conn.execute("SELECT body FROM markers ORDER BY id")]


def test_dr2_pitr_between_two_markers_keeps_exactly_the_rows_before(
    local_db: LocalPostgres,
) -> None:
    primary = local_db.primary()
    with _app(local_db, primary) as conn:
        conn.execute(_TABLE)
        _insert(conn, "before-backup")
    full = local_db.backup("full")
    # pgBackRest records a backup's stop time in whole seconds: a target in the same second
    # as the stop is not yet restorable from it.
    while datetime.now(UTC) < full.finished_at + timedelta(seconds=1.1):
        time.sleep(0.05)
    with _app(local_db, primary) as conn:
        a = _insert(conn, "a")
        time.sleep(0.2)
        b = _insert(conn, "b")
        _insert(conn, "c")
    target = a + (b - a) / 2
    local_db.archived_until()  # the WAL holding b must be archived before the target is reachable

    restored = local_db.restore("pitr", RestoreTarget(to_time=target), scratch=True)
    try:
        assert restored.port != primary.port
        assert _bodies(restored) == ["before-backup", "a"]
        # the primary is untouched and still has every row
        assert _bodies(local_db.primary()) == ["before-backup", "a", "b", "c"]
        assert local_db.primary().id == "primary"
    finally:
        local_db.destroy("pitr")


def test_dr4_deleted_data_directory_is_recovered_into_a_new_primary(
    local_db: LocalPostgres,
) -> None:
    primary = local_db.primary()
    with _app(local_db, primary) as conn:
        conn.execute(_TABLE)
        _insert(conn, "in-backup")
    local_db.backup("full")
    with _app(local_db, primary) as conn:
        _insert(conn, "after-backup-in-wal")
    local_db.archived_until()

    local_db.kill("primary")
    shutil.rmtree(local_db.layout.data("primary"))

    restored = local_db.restore("restored-1", RestoreTarget(), scratch=False)
    promoted = local_db.promote("restored-1")
    assert local_db.primary().id == "restored-1"
    assert _bodies(promoted) == ["in-backup", "after-backup-in-wal"]
    # the new primary archives and backs up: a backup of it succeeds and lists
    with _app(local_db, restored) as conn:
        _insert(conn, "on-new-primary")
    point = local_db.backup("diff")
    assert point.kind == "diff"
    assert local_db.archived_until() is not None


def test_restore_refuses_an_unknown_backup_and_the_primary_as_target(
    local_db: LocalPostgres,
) -> None:
    local_db.backup("full")
    with pytest.raises(NotFoundError, match="no database backup"):
        local_db.restore("x", RestoreTarget(backup_id="20000101-000000F"), scratch=True)
    with pytest.raises(BackupError, match="over the primary"):
        local_db.restore("primary", RestoreTarget(), scratch=True)
    assert local_db.primary().running


def test_snapshot_restore_by_backup_id(local_db: LocalPostgres) -> None:
    primary = local_db.primary()
    with _app(local_db, primary) as conn:
        conn.execute(_TABLE)
        _insert(conn, "one")
    first = local_db.backup("full")
    with _app(local_db, primary) as conn:
        _insert(conn, "two")
    local_db.backup("diff")
    restored = local_db.restore("snap", RestoreTarget(backup_id=first.id), scratch=True)
    try:
        assert _bodies(restored) == ["one"]
        assert first.finished_at <= datetime.now(UTC) + timedelta(seconds=1)
    finally:
        local_db.destroy("snap")


def test_dr5_standby_of_a_restored_primary_streams_and_is_promoted_with_every_row(
    local_db: LocalPostgres,
) -> None:
    """Level 3 locally: a standby streaming from the primary (here a primary that was itself
    restored to a point in time, whose recovery target must not leak into the standby) is
    promoted when the primary dies, with every committed row."""
    primary = local_db.primary()
    with _app(local_db, primary) as conn:
        conn.execute(_TABLE)
        _insert(conn, "one")
    full = local_db.backup("full")
    while datetime.now(UTC) < full.finished_at + timedelta(seconds=1.1):
        time.sleep(0.05)
    with _app(local_db, primary) as conn:
        target = _insert(conn, "two")  # commits a moment after this timestamp
        _insert(conn, "after-target")
    local_db.archived_until()
    local_db.restore("r1", RestoreTarget(to_time=target), scratch=False)
    local_db.promote("r1")
    standby = local_db.start_standby("site-b")
    with _app(local_db, local_db.primary()) as conn:
        _insert(conn, "streamed")
    deadline = time.monotonic() + 30
    while local_db.replication_lag_bytes("site-b") not in (0,) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert local_db.replication_lag_bytes("site-b") == 0
    local_db.kill("r1")
    promoted = local_db.promote("site-b")
    assert promoted.id == local_db.primary().id == "site-b"
    assert promoted.port == standby.port
    # "two" committed just after its own clock_timestamp(): the target excludes it
    assert _bodies(promoted) == ["one", "streamed"]
