"""The scheduled test restore (DR-1 freshness and real restore tests): checksums are not
enough, so the newest database backup is restored into a scratch instance and read, the
pgBackRest repository is verified, and part of the application data is read back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deployops.domain.backup import RestoreTarget
from deployops.errors import DeployopsError
from deployops.ports.recovery import BackupRepo, Database

__all__ = ["run_test_restore"]

SCRATCH_ID = "test-restore"


def run_test_restore(
    *,
    database: Database | None,
    repo: BackupRepo | None,
    progress: Callable[[str], None] = lambda _m: None,
    read_data_percent: float = 5.0,
) -> dict[str, Any]:
    """Returns ``{"ok", "problems", "lines", "database", "app_data"}``; never raises for a
    failed check (the failure is the result)."""
    problems: list[str] = []
    lines: list[str] = []
    facts: dict[str, Any] = {}
    if database is not None:
        try:
            if not database.backups():
                problems.append("database: no backup to restore")
            else:
                progress("database: restoring the newest backup into a scratch instance")
                database.restore(SCRATCH_ID, RestoreTarget(), scratch=True)
                facts = database.inspect(SCRATCH_ID)
                lines.append(
                    f"database: scratch restore answers, {facts.get('tables', 0)} table(s), "
                    f"{facts.get('items', 0)} item(s)"
                )
        except DeployopsError as exc:
            problems.append(f"database: test restore failed: {exc.message}")
        finally:
            database.destroy(SCRATCH_ID)
        try:
            progress("database: verifying the repository")
            found = database.verify()
            problems += [f"database repository: {p}" for p in found]
            if not found:
                lines.append("database: repository verified")
        except DeployopsError as exc:
            problems.append(f"database: verify failed: {exc.message}")
    app_data: dict[str, Any] = {}
    if repo is not None:
        try:
            snaps = repo.snapshots()
            app_data["snapshots"] = len(snaps)
            if snaps:
                progress(f"application data: reading back {read_data_percent:g}% of the data")
                found = repo.check(read_data_percent=read_data_percent)
                problems += [f"application data: {p}" for p in found]
                if not found:
                    lines.append(
                        f"application data: {len(snaps)} snapshot(s), "
                        f"{read_data_percent:g}% read back intact"
                    )
            else:
                problems.append("application data: no snapshot to check")
        except DeployopsError as exc:
            problems.append(f"application data: {exc.message}")
    lines += [f"PROBLEM {p}" for p in problems]
    return {
        "ok": not problems,
        "problems": problems,
        "lines": lines,
        "database": facts,
        "app_data": app_data,
    }
