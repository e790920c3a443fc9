"""A local application database (PostgreSQL 15 + pgBackRest) in a temp dir per test."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployops.clock import SystemClock
from deployops.domain.backup import DEFAULT_POLICIES, BackupTarget
from deployops.drivers.local.postgres import LocalPostgres
from deployops.secret import Secret
from tests.fixtures_local import free_port

APP_PASSWORD = "app-pw-never-shown-4c1d"


@pytest.fixture
def dr_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="dops-dr-"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def local_db(dr_root: Path) -> Iterator[LocalPostgres]:
    """A primary named ``primary`` with the application's role and database, archiving WAL
    with a 10 s archive_timeout."""
    db = LocalPostgres(
        root=dr_root / "db",
        policy=DEFAULT_POLICIES[BackupTarget.DATABASE],
        clock=SystemClock(),
        app_password=Secret(APP_PASSWORD),
        archive_timeout=10,
    )
    db.create_primary("primary", port=free_port())
    try:
        yield db
    finally:
        db.stop_all()
