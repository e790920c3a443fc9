"""The ``backups:`` section of ``deployops.yaml`` (DR-1): one policy per target, the guide's
table as defaults, and where the local platform keeps the application's database and its
repositories. A section only names what it changes::

    backups:
      database:                # PostgreSQL: pgBackRest fulls/diffs + WAL archive (PITR)
        every: 24h             # a full backup daily
        differential_every: 6h
        retention: 30d
        rpo: 5m                # archive_timeout is derived from it (a fifth, 10 s .. 300 s)
        rto: 1h
        name: app              # the application's database (DB_NAME) and user (DB_USER)
        user: app
        port: 55432            # local platform: where the primary listens
        process_max: 2
      app_data:                # restic: hourly, incremental
        paths: [data]          # relative to the project
        every: 1h
        retention: 7d
        rpo: 1h
        rto: 30m
        repository: ""         # default .deployops/backups/restic; or s3:host/bucket/path
        password: secret://restic-password   # default: a generated file under .deployops
      config: {retention: 90d, rpo: 0, rto: 15m}
      logs: {retention: 90d}
      drills: {every: 91d, automatic: false}
      test_restore: {every: 7d}
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import BaseModel, ConfigDict, Field

from deployops.config.durations import Duration
from deployops.domain.backup import (
    DEFAULT_POLICIES,
    DRILL_INTERVAL_S,
    BackupPolicy,
    BackupTarget,
)

__all__ = [
    "AppDataBackupConfig",
    "BackupsConfig",
    "DatabaseBackupConfig",
    "DrillsConfig",
    "TargetConfig",
    "TestRestoreConfig",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetConfig(_Model):
    every: Duration | None = None
    retention: Duration | None = Field(default=None, gt=0)
    rpo: Duration | None = Field(default=None, ge=0)
    rto: Duration | None = Field(default=None, ge=0)

    def apply(self, base: BackupPolicy) -> BackupPolicy:
        return replace(
            base,
            # 0 means "on every change / continuously" (no schedule), like the guide's rows
            every_s=base.every_s if self.every is None else (self.every or None),
            retention_s=base.retention_s if self.retention is None else self.retention,
            rpo_s=base.rpo_s if self.rpo is None else self.rpo,
            rto_s=base.rto_s if self.rto is None else self.rto,
        )


class DatabaseBackupConfig(TargetConfig):
    differential_every: Duration | None = None
    name: str = Field(default="app", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    user: str = Field(default="app", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    port: int = Field(default=55432, ge=1, le=65535)
    process_max: int = Field(default=2, ge=2, le=32)

    def apply(self, base: BackupPolicy) -> BackupPolicy:
        out = super().apply(base)
        if self.differential_every is not None:
            out = replace(out, differential_every_s=self.differential_every)
        return out


class AppDataBackupConfig(TargetConfig):
    paths: tuple[str, ...] = ("data",)
    repository: str = ""
    password: str = ""  # a secret reference (secret://name); default: a generated key file


class DrillsConfig(_Model):
    every: Duration = DRILL_INTERVAL_S
    # The controller announces a due drill to the notification routes; with automatic it
    # also runs it (a drill breaks the service on purpose: opt in per project).
    automatic: bool = False


class TestRestoreConfig(_Model):
    every: Duration = Field(default=7 * 86400, gt=0)  # the controller's scheduled test restore


class BackupsConfig(_Model):
    database: DatabaseBackupConfig = DatabaseBackupConfig()
    app_data: AppDataBackupConfig = AppDataBackupConfig()
    config: TargetConfig = TargetConfig()
    logs: TargetConfig = TargetConfig()
    drills: DrillsConfig = DrillsConfig()
    test_restore: TestRestoreConfig = TestRestoreConfig()

    def policy(self, target: BackupTarget) -> BackupPolicy:
        """The effective policy of ``target``: the guide's row with this file's changes."""
        section: TargetConfig = {
            BackupTarget.DATABASE: self.database,
            BackupTarget.APP_DATA: self.app_data,
            BackupTarget.CONFIG: self.config,
            BackupTarget.LOGS: self.logs,
        }[target]
        return section.apply(DEFAULT_POLICIES[target])

    def policies(self) -> dict[BackupTarget, BackupPolicy]:
        return {t: self.policy(t) for t in BackupTarget}
