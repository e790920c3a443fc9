"""DR-1 test restores with the real components: the newest database backup is restored into a
scratch instance and read (then removed), the pgBackRest repository verified, part of the
restic data read back; a corrupted repository is flagged, not passed on checksums alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deployops.clock import SystemClock
from deployops.drivers.local.postgres import LocalPostgres
from deployops.drivers.local.restic import ResticBackupRepo
from deployops.engine.testrestore import SCRATCH_ID, run_test_restore
from deployops.secret import Secret

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _restic(tmp_path: Path) -> ResticBackupRepo:
    repo = ResticBackupRepo(
        repository=str(tmp_path / "restic"),
        password=Secret("pw-for-test-restore"),
        clock=SystemClock(),
        cache_dir=tmp_path / "cache",
    )
    repo.init()
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.bin").write_bytes(os.urandom(256 * 1024))
    repo.backup([data])
    return repo


def test_test_restore_passes_on_sound_backups_and_leaves_no_scratch_instance(
    local_db: LocalPostgres, tmp_path: Path
) -> None:
    local_db.backup("full")
    result = run_test_restore(database=local_db, repo=_restic(tmp_path), read_data_percent=100)
    assert result["ok"], result["problems"]
    assert result["database"]["accepting_writes"]
    assert SCRATCH_ID not in {i.id for i in local_db.instances()}
    assert local_db.primary().running


def test_test_restore_flags_a_corrupted_repository(local_db: LocalPostgres, tmp_path: Path) -> None:
    local_db.backup("full")
    repo = _restic(tmp_path)
    pack = max(
        (p for p in (tmp_path / "restic" / "data").rglob("*") if p.is_file()),
        key=lambda p: p.stat().st_size,
    )
    raw = bytearray(pack.read_bytes())
    raw[500:600] = bytes(b ^ 0xFF for b in raw[500:600])
    pack.write_bytes(bytes(raw))
    # and a database backup file damaged on disk
    files = [p for p in (local_db.layout.repo / "backup").rglob("*.zst") if p.stat().st_size > 64]
    victim = max(files, key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[20:40] = bytes(b ^ 0xFF for b in data[20:40])
    victim.write_bytes(bytes(data))

    result = run_test_restore(database=local_db, repo=repo, read_data_percent=100)
    assert not result["ok"]
    text = " ".join(result["problems"])
    assert "application data" in text
    assert "database" in text
    assert local_db.primary().running  # the live database was never touched
