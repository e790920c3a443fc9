"""DR-1 application data with the real restic: an hourly backup of a changed tree stores only
the change; a restore gives the tree back; a corrupted repository is flagged by reading the
data back; a wrong password or a missing repository is a clear error without the password."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from deployops.clock import SystemClock
from deployops.drivers.local.restic import ResticBackupRepo
from deployops.errors import BackupError, NotFoundError
from deployops.secret import Secret

pytestmark = pytest.mark.integration

PASSWORD = "restic-pw-never-shown-9f2e"


def _repo(tmp_path: Path, password: str = PASSWORD) -> ResticBackupRepo:
    return ResticBackupRepo(
        repository=str(tmp_path / "repo"),
        password=Secret(password),
        clock=SystemClock(),
        cache_dir=tmp_path / "cache",
    )


def _tree(root: Path, files: int = 20, size: int = 512 * 1024) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (root / f"f{i:02d}.bin").write_bytes(os.urandom(size))


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_dr1_hourly_backup_of_a_changed_tree_is_incremental(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _tree(data)
    repo = _repo(tmp_path)
    repo.init()
    repo.init()  # idempotent
    first = repo.backup([data], tags=["hourly"])
    assert first.added_bytes > 9 * 1024 * 1024  # ~10 MB of random data, stored once
    (data / "f00.bin").write_bytes(os.urandom(100 * 1024))  # ~1 % of the tree changes
    second = repo.backup([data], tags=["hourly"])
    assert second.added_bytes < 512 * 1024
    assert [p.id for p in repo.snapshots()] == [first.id, second.id]

    want = _digest(data)
    out = tmp_path / "restored"
    repo.restore(second.id, out)
    assert _digest(out / data.relative_to("/")) == want
    # retention keeps both (they are minutes old); nothing is forgotten
    assert repo.forget(7 * 86400) == []
    assert repo.check(read_data_percent=100) == []


def test_a_corrupted_repository_is_flagged_by_reading_the_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _tree(data, files=4)
    repo = _repo(tmp_path)
    repo.init()
    repo.backup([data])
    packs = sorted((tmp_path / "repo" / "data").rglob("*"))
    pack = max((p for p in packs if p.is_file()), key=lambda p: p.stat().st_size)
    raw = bytearray(pack.read_bytes())
    for i in range(1000, 1100):
        raw[i] ^= 0xFF
    pack.write_bytes(bytes(raw))
    problems = repo.check(read_data_percent=100)
    assert problems, "a flipped pack must be reported"


def test_wrong_password_missing_repo_and_unknown_snapshot_are_clear(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _tree(data, files=1, size=1024)
    with pytest.raises(BackupError, match="no backup repository") as missing:
        _repo(tmp_path).snapshots()
    assert "fix:" in str(missing.value)
    repo = _repo(tmp_path)
    repo.init()
    repo.backup([data])
    with pytest.raises(BackupError, match="password is wrong") as wrong:
        _repo(tmp_path, password="not-the-password").snapshots()
    assert "not-the-password" not in str(wrong.value)
    with pytest.raises(NotFoundError, match="no application-data snapshot"):
        repo.restore("deadbeef", tmp_path / "out")
    with pytest.raises(BackupError, match="nothing to back up"):
        repo.backup([tmp_path / "absent"])
