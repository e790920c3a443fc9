"""Ports for backups and disaster recovery (DR-1..DR-7): ``Database``, ``BackupRepo``, ``Dns``.

Local drivers: a PostgreSQL cluster with pgBackRest (``drivers/local/postgres.py``), restic
(``drivers/local/restic.py``), a repointable front listener (``drivers/local/dns.py``). AWS
drivers: RDS, restic to S3, Route 53. A driver declares what it can do in ``capabilities``
(``pitr``, ``snapshot``, ``standby``, ``verify``); the engine refuses what is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from deployops.domain.backup import BackupPoint, DbInstance, RestoreTarget

__all__ = ["BackupRepo", "Database", "DatabaseEndpoints", "Dns"]


@runtime_checkable
class Database(Protocol):
    """The application's database: backups, point-in-time restore to a new instance,
    standby promotion, and which instance is the primary."""

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]]

    def primary(self) -> DbInstance:
        """The instance the application should use. Raises ``NotFoundError`` if none."""
        ...

    def instances(self) -> Sequence[DbInstance]: ...

    def backup(self, kind: str) -> BackupPoint:
        """Take a ``full`` or ``diff`` backup of the primary; returns it once complete."""
        ...

    def backups(self) -> Sequence[BackupPoint]:
        """Every restorable backup, oldest first."""
        ...

    def archived_until(self) -> datetime | None:
        """Force the current WAL out and wait until it is archived: everything committed
        before the returned moment is reachable by a point-in-time restore."""
        ...

    def earliest_point(self) -> datetime | None:
        """The oldest moment a restore can reach (the oldest backup's end)."""
        ...

    def restore(self, instance_id: str, target: RestoreTarget, *, scratch: bool) -> DbInstance:
        """Restore into a NEW instance ``instance_id`` and start it promoted. The running
        primary is not touched. A ``scratch`` instance does not archive (a test restore).
        Idempotent: an instance that is already restored and running is returned."""
        ...

    def promote(self, instance_id: str) -> DbInstance:
        """Make ``instance_id`` the primary the application and the backups use."""
        ...

    def start_standby(self, instance_id: str) -> DbInstance:
        """A standby streaming from the primary (level 3's second site)."""
        ...

    def destroy(self, instance_id: str) -> None:
        """Stop the instance and delete its data (absent is fine)."""
        ...

    def verify(self) -> list[str]:
        """Check the repository's backups and archive; problems found (empty when sound)."""
        ...

    def inspect(self, instance_id: str) -> dict[str, Any]:
        """What a restored instance holds, as evidence for its verification: whether it
        accepts writes, its tables, rows of the application's ``items`` and the newest one."""
        ...


@runtime_checkable
class DatabaseEndpoints(Protocol):
    """Where a service's database is now, kept as environment state: a restore or a failover
    that repoints the application records the endpoint, and the deploy planning uses it in
    place of the ``DB_HOST`` / ``DB_PORT`` of ``deployops.yaml`` (a restore survives the next
    deploy)."""

    def set_database_endpoint(self, service: str, *, host: str, port: int, source: str) -> None:
        """Record the endpoint; ``source`` is the operation that moved the application."""
        ...

    def database_endpoint(self, service: str) -> tuple[str, int] | None:
        """``(host, port)`` recorded for ``service``, or ``None`` (the yaml's values hold)."""
        ...


@runtime_checkable
class BackupRepo(Protocol):
    """Incremental file backups with time-based retention (restic)."""

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]]

    def init(self) -> None:
        """Create the repository if it does not exist (idempotent)."""
        ...

    def backup(self, paths: Sequence[Path], *, tags: Sequence[str] = ()) -> BackupPoint: ...

    def snapshots(self) -> Sequence[BackupPoint]:
        """Oldest first."""
        ...

    def restore(self, snapshot_id: str, target: Path) -> None:
        """Restore ``snapshot_id`` into ``target``. Raises ``NotFoundError`` for an unknown id."""
        ...

    def forget(self, keep_within_s: float) -> list[str]:
        """Drop snapshots older than the retention and prune; returns the ids removed."""
        ...

    def check(self, *, read_data_percent: float) -> list[str]:
        """Problems found when reading back ``read_data_percent`` of the data (empty: sound)."""
        ...


@runtime_checkable
class Dns(Protocol):
    """A name the clients resolve, pointed at one site at a time (Route 53 failover; a front
    listener locally)."""

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]]

    def current(self, record: str) -> str:
        """The target ``record`` points at now."""
        ...

    def point(self, record: str, target: str) -> str:
        """Point ``record`` at ``target`` (idempotent); returns the target read back."""
        ...
