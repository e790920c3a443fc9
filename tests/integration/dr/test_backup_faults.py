"""Faults around a database backup: PostgreSQL killed while pgBackRest copies it is a clear
backup error (not a half backup listed as restorable); once the primary is back the next
backup succeeds and is listed."""

from __future__ import annotations

import threading

import psycopg
import pytest

from deployops.drivers.local.postgres import LocalPostgres
from deployops.errors import BackupError, DeployopsError

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_postgres_killed_during_a_backup_fails_it_cleanly_and_the_next_one_works(
    local_db: LocalPostgres,
) -> None:
    inst = local_db.primary()
    with psycopg.connect(local_db.dsn(inst, "app"), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE filler AS SELECT g, md5(g::text) AS a FROM generate_series(1, 1500000) g"
        )
    before = {p.id for p in local_db.backups()}
    errors: list[DeployopsError] = []

    def run() -> None:
        try:
            local_db.backup("full")
        except DeployopsError as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    # kill as soon as pgBackRest has started the backup (pg_backup_start holds a session)
    deadline_loops = 600
    while deadline_loops and t.is_alive():
        try:
            with psycopg.connect(local_db.dsn(inst), autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE "
                    "'pgBackRest%'"
                ).fetchone()
                if row and row[0]:
                    break
        except psycopg.OperationalError:
            break
        deadline_loops -= 1
    local_db.kill(inst.id)
    t.join(timeout=300)
    if not errors:
        pytest.skip("the backup finished before the kill landed (machine too fast)")
    assert isinstance(errors[0], BackupError)
    assert "fix:" in str(errors[0])
    # the failed backup is not offered as a restore point
    assert {p.id for p in local_db.backups()} == before
    local_db.create_primary(inst.id, port=inst.port)  # start it again (idempotent)
    point = local_db.backup("full")
    assert point.id in {p.id for p in local_db.backups()}
