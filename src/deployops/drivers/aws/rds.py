"""``RdsDatabase``: the ``Database`` port on Amazon RDS (DR-2, DR-4, DR-5).

A restore never touches the running instance: ``restore_db_instance_to_point_in_time`` or
``restore_db_instance_from_db_snapshot`` creates a NEW instance, which is waited for until
``available``. Which instance the application uses is a tag (``deployops:role=primary``), so
every process agrees after a promotion; a read replica (the second site, tagged ``standby``)
is promoted with ``promote_read_replica`` before it takes the tag. Backups are RDS's own:
automated backups (the point-in-time window, ``LatestRestorableTime``) and snapshots
(``create_db_snapshot``).

    db = RdsDatabase(client=boto3.client("rds"), clock=clock, instance="shop-prod")
    db.restore("shop-prod-rst-1", RestoreTarget(to_time=t), scratch=False)
    db.promote("shop-prod-rst-1")

What RDS does not answer: the rows an instance holds. ``inspect`` reports the instance's
state (available, writable, endpoint); the application's own checks read the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from deployops.clock import Clock
from deployops.domain.backup import BackupPoint, BackupTarget, DbInstance, DbRole, RestoreTarget
from deployops.drivers.aws._errors import map_aws_errors
from deployops.engine.poll import wait_until
from deployops.errors import BackupError, NotFoundError

__all__ = ["PRIMARY_TAG", "RdsDatabase"]

PRIMARY_TAG = "deployops:role"


class RdsDatabase:
    name: ClassVar[str] = "rds"
    capabilities: ClassVar[frozenset[str]] = frozenset({"pitr", "snapshot", "standby", "verify"})

    def __init__(
        self,
        *,
        client: Any,
        clock: Clock,
        instance: str,
        wait_timeout_s: float = 3600.0,
        poll_s: float = 15.0,
    ) -> None:
        self.client = client
        self.clock = clock
        self.instance = instance  # the instance deployops was set up with (Terraform's)
        self.wait_timeout_s = wait_timeout_s
        self.poll_s = poll_s

    # ------------------------------------------------------------------ instances
    def _describe(self, instance_id: str) -> dict[str, Any] | None:
        with map_aws_errors("rds:DescribeDBInstances", resource=instance_id):
            try:
                out = self.client.describe_db_instances(DBInstanceIdentifier=instance_id)
            except self.client.exceptions.DBInstanceNotFoundFault:
                return None
        rows = out.get("DBInstances", [])
        return rows[0] if rows else None

    def _instance(self, raw: dict[str, Any], role: DbRole) -> DbInstance:
        ep = raw.get("Endpoint") or {}
        return DbInstance(
            id=raw["DBInstanceIdentifier"],
            host=str(ep.get("Address", "")),
            port=int(ep.get("Port", 5432)),
            role=role,
            running=raw.get("DBInstanceStatus") == "available",
            created_at=raw.get("InstanceCreateTime"),
        )

    def _tags(self, raw: dict[str, Any]) -> dict[str, str]:
        with map_aws_errors("rds:ListTagsForResource", resource=raw["DBInstanceIdentifier"]):
            out = self.client.list_tags_for_resource(ResourceName=raw["DBInstanceArn"])
        return {t["Key"]: t["Value"] for t in out.get("TagList", [])}

    def _all(self) -> list[dict[str, Any]]:
        with map_aws_errors("rds:DescribeDBInstances"):
            pages = self.client.get_paginator("describe_db_instances").paginate()
            return [i for page in pages for i in page.get("DBInstances", [])]

    def primary_id(self) -> str:
        tagged = [i for i in self._all() if self._tags(i).get(PRIMARY_TAG) == "primary"]
        if tagged:
            return str(tagged[0]["DBInstanceIdentifier"])
        return self.instance

    def primary(self) -> DbInstance:
        pid = self.primary_id()
        raw = self._describe(pid)
        if raw is None:
            raise NotFoundError(
                f"RDS instance {pid} does not exist",
                path="environments.<env>.aws",
                hint="check the instance name in the Terraform outputs (aws rds "
                "describe-db-instances lists them)",
            )
        return self._instance(raw, DbRole.PRIMARY)

    def _is_standby(self, raw: dict[str, Any]) -> bool:
        """A read replica not promoted yet: by deployops' role tag, else by the source listing
        it among its replicas (``ReadReplicaSourceDBInstanceIdentifier`` alone is not enough:
        a point-in-time restore can carry its source's name there)."""
        role = self._tags(raw).get(PRIMARY_TAG)
        if role in ("primary", "standby"):
            return role == "standby"
        source = raw.get("ReadReplicaSourceDBInstanceIdentifier")
        src = self._describe(str(source)) if source else None
        return bool(src) and raw["DBInstanceIdentifier"] in (src or {}).get(
            "ReadReplicaDBInstanceIdentifiers", []
        )

    def instances(self) -> Sequence[DbInstance]:
        pid = self.primary_id()
        out = []
        for raw in self._all():
            if raw["DBInstanceIdentifier"] == pid:
                role = DbRole.PRIMARY
            elif self._is_standby(raw):
                role = DbRole.STANDBY
            else:
                role = DbRole.PRIMARY  # a restored instance: writable, not (yet) the one in use
            out.append(self._instance(raw, role))
        return out

    # ------------------------------------------------------------------ backups
    def backup(self, kind: str) -> BackupPoint:
        """A manual snapshot of the primary (RDS takes the automated ones itself)."""
        pid = self.primary_id()
        sid = f"{pid}-{self.clock.now():%Y%m%d-%H%M%S}"
        with map_aws_errors("rds:CreateDBSnapshot", resource=pid):
            self.client.create_db_snapshot(DBSnapshotIdentifier=sid, DBInstanceIdentifier=pid)
        self._wait(
            lambda: self._snapshot_status(sid) == "available", what=f"snapshot {sid} available"
        )
        return next(p for p in self.backups() if p.id == sid)

    def _snapshot_status(self, sid: str) -> str:
        with map_aws_errors("rds:DescribeDBSnapshots", resource=sid):
            out = self.client.describe_db_snapshots(DBSnapshotIdentifier=sid)
        rows = out.get("DBSnapshots", [])
        return str(rows[0].get("Status", "")) if rows else ""

    def backups(self) -> Sequence[BackupPoint]:
        """The primary's snapshots, automated and manual, oldest first."""
        pid = self.primary_id()
        with map_aws_errors("rds:DescribeDBSnapshots", resource=pid):
            pages = self.client.get_paginator("describe_db_snapshots").paginate(
                DBInstanceIdentifier=pid
            )
            rows = [s for page in pages for s in page.get("DBSnapshots", [])]
        points = [
            BackupPoint(
                target=BackupTarget.DATABASE,
                id=str(s["DBSnapshotIdentifier"]),
                kind=str(s.get("SnapshotType", "manual")),
                started_at=s["SnapshotCreateTime"],
                finished_at=s["SnapshotCreateTime"],
                size_bytes=int(s.get("AllocatedStorage", 0)) * 1024**3,
            )
            for s in rows
            if s.get("Status") == "available" and s.get("SnapshotCreateTime")
        ]
        return sorted(points, key=lambda p: p.finished_at)

    def _restore_window(self) -> dict[str, Any]:
        pid = self.primary_id()
        with map_aws_errors("rds:DescribeDBInstanceAutomatedBackups", resource=pid):
            out = self.client.describe_db_instance_automated_backups(DBInstanceIdentifier=pid)
        rows = out.get("DBInstanceAutomatedBackups", [])
        return dict(rows[0].get("RestoreWindow") or {}) if rows else {}

    def archived_until(self) -> datetime | None:
        """RDS's ``LatestRestorableTime`` (it ships the transaction logs every 5 minutes)."""
        raw = self._describe(self.primary_id())
        latest = raw.get("LatestRestorableTime") if raw else None
        return latest or self._restore_window().get("LatestTime")

    def earliest_point(self) -> datetime | None:
        earliest = self._restore_window().get("EarliestTime")
        if earliest is not None:
            return earliest  # type: ignore[no-any-return]
        points = self.backups()
        return points[0].finished_at if points else None

    # ------------------------------------------------------------------ restores
    def restore(self, instance_id: str, target: RestoreTarget, *, scratch: bool) -> DbInstance:
        """Into a NEW instance; an instance of that name already there is waited for and
        returned (a resumed restore does not start a second one)."""
        if self._describe(instance_id) is None:
            if target.backup_id:
                with map_aws_errors(
                    "rds:RestoreDBInstanceFromDBSnapshot", resource=target.backup_id
                ):
                    self.client.restore_db_instance_from_db_snapshot(
                        DBInstanceIdentifier=instance_id,
                        DBSnapshotIdentifier=target.backup_id,
                        Tags=[{"Key": "deployops:restored-by", "Value": "deployops"}],
                    )
            else:
                kwargs: dict[str, Any] = {
                    "SourceDBInstanceIdentifier": self.primary_id(),
                    "TargetDBInstanceIdentifier": instance_id,
                    "Tags": [{"Key": "deployops:restored-by", "Value": "deployops"}],
                }
                if target.to_time is not None:
                    kwargs["RestoreTime"] = target.to_time
                else:
                    kwargs["UseLatestRestorableTime"] = True
                with map_aws_errors(
                    "rds:RestoreDBInstanceToPointInTime", resource=self.primary_id()
                ):
                    self.client.restore_db_instance_to_point_in_time(**kwargs)
        # a scratch instance (a test restore) is destroyed by the caller once checked
        return self._wait_available(instance_id, DbRole.SCRATCH if scratch else DbRole.PRIMARY)

    def _wait(self, check: Any, *, what: str) -> None:
        wait_until(
            self.clock,
            lambda: (bool(check()), what),
            timeout_s=self.wait_timeout_s,
            interval_s=self.poll_s,
            what=what,
        )

    def _wait_available(self, instance_id: str, role: DbRole) -> DbInstance:
        def ready() -> bool:
            raw = self._describe(instance_id)
            return raw is not None and raw.get("DBInstanceStatus") == "available"

        self._wait(ready, what=f"RDS instance {instance_id} available")
        raw = self._describe(instance_id)
        assert raw is not None
        return self._instance(raw, role)

    def promote(self, instance_id: str) -> DbInstance:
        """A read replica is promoted first; then the instance takes the primary tag (and the
        old primary loses it)."""
        raw = self._describe(instance_id)
        if raw is None:
            raise BackupError(f"RDS instance {instance_id} does not exist")
        if self._is_standby(raw):
            with map_aws_errors("rds:PromoteReadReplica", resource=instance_id):
                self.client.promote_read_replica(DBInstanceIdentifier=instance_id)
            # RDS reboots the replica as a standalone instance: modifying, then available
            self._wait_available(instance_id, DbRole.PRIMARY)
        old = self._describe(self.primary_id())
        with map_aws_errors("rds:AddTagsToResource", resource=instance_id):
            self.client.add_tags_to_resource(
                ResourceName=raw["DBInstanceArn"], Tags=[{"Key": PRIMARY_TAG, "Value": "primary"}]
            )
            if old is not None and old["DBInstanceIdentifier"] != instance_id:
                self.client.remove_tags_from_resource(
                    ResourceName=old["DBInstanceArn"], TagKeys=[PRIMARY_TAG]
                )
        return self._wait_available(instance_id, DbRole.PRIMARY)

    def start_standby(self, instance_id: str) -> DbInstance:
        """A read replica of the primary (the second site; cross-region with the RDS module's
        replication, which this same call makes in the other region's client)."""
        if self._describe(instance_id) is None:
            with map_aws_errors("rds:CreateDBInstanceReadReplica", resource=instance_id):
                self.client.create_db_instance_read_replica(
                    DBInstanceIdentifier=instance_id,
                    SourceDBInstanceIdentifier=self.primary_id(),
                    Tags=[{"Key": PRIMARY_TAG, "Value": "standby"}],
                )
        return self._wait_available(instance_id, DbRole.STANDBY)

    def destroy(self, instance_id: str) -> None:
        if self._describe(instance_id) is None:
            return
        with map_aws_errors("rds:DeleteDBInstance", resource=instance_id):
            self.client.delete_db_instance(DBInstanceIdentifier=instance_id, SkipFinalSnapshot=True)

    def verify(self) -> list[str]:
        """What RDS can say about the backups: automated backups on, a restorable window."""
        raw = self._describe(self.primary_id())
        if raw is None:
            return [f"RDS instance {self.primary_id()} does not exist"]
        problems = []
        if int(raw.get("BackupRetentionPeriod", 0)) < 1:
            problems.append("automated backups are off (BackupRetentionPeriod 0)")
        if self.archived_until() is None:
            problems.append("no point-in-time window (no LatestRestorableTime)")
        return problems

    def inspect(self, instance_id: str) -> dict[str, Any]:
        raw = self._describe(instance_id)
        if raw is None:
            raise BackupError(f"RDS instance {instance_id} does not exist")
        ep = raw.get("Endpoint") or {}
        return {
            "status": raw.get("DBInstanceStatus"),
            "accepting_writes": raw.get("DBInstanceStatus") == "available"
            and not self._is_standby(raw),
            "engine": raw.get("Engine"),
            "host": ep.get("Address", ""),
            "port": ep.get("Port", 0),
        }
