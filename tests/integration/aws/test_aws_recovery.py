"""The AWS side of recovery on moto server (DR-2, DR-4, DR-5): ``RdsDatabase`` restores to a
point in time and from a snapshot into NEW instances (the source untouched), lists the
snapshots and the automated-backup window, promotes a read replica (the second site) and
moves the primary tag; ``Route53Dns`` changes a failover record with
``change_resource_record_sets`` and reads it back. The restore and failover steps run on the
one operation runner against these drivers exactly as locally.

What moto cannot show, and a real account does: how long a restore takes (moto's instances
are ``available`` at once; the driver waits on ``DBInstanceStatus`` with the clock, so a real
restore is waited for the same way), that the restored instance holds the rows up to the
target time (moto copies the instance's settings, not data: the time is accepted, not
replayed), real ``LatestRestorableTime`` lag (moto answers "now"), cross-region automated
backup replication, the read replica's replication lag, and Route 53's health checks
flipping a failover pair by themselves (moto stores the records, never evaluates them).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from deployops.clock import VirtualClock
from deployops.domain.backup import DbRole, RestoreTarget
from deployops.drivers.aws.rds import PRIMARY_TAG, RdsDatabase
from deployops.drivers.aws.route53 import Route53Dns
from deployops.errors import DeploymentError, NotFoundError
from tests.integration.aws.moto_rig import REGION, MotoServer

pytestmark = pytest.mark.integration


def _rds(aws: MotoServer) -> Any:
    client = boto3.client("rds", region_name=REGION)
    client.create_db_instance(
        DBInstanceIdentifier="shop-prod",
        DBInstanceClass="db.t4g.micro",
        Engine="postgres",
        MasterUsername="app",
        MasterUserPassword="not-a-real-password",
        AllocatedStorage=20,
        BackupRetentionPeriod=30,
    )
    return client


def _db(client: Any) -> RdsDatabase:
    return RdsDatabase(client=client, clock=VirtualClock(), instance="shop-prod", poll_s=1)


def test_dr2_dr4_rds_restores_into_new_instances_and_leaves_the_source(aws: MotoServer) -> None:
    client = _rds(aws)
    db = _db(client)
    assert db.primary().id == "shop-prod"
    snap = db.backup("full")
    assert snap.kind == "manual" and snap.id.startswith("shop-prod-")
    assert snap.id in {p.id for p in db.backups()}
    assert db.archived_until() is not None
    assert db.verify() == []

    from_snapshot = db.restore("shop-rst-1", RestoreTarget(backup_id=snap.id), scratch=False)
    assert from_snapshot.id == "shop-rst-1" and from_snapshot.host and from_snapshot.running
    t = datetime.now(UTC) - timedelta(minutes=10)
    pitr = db.restore("shop-rst-2", RestoreTarget(to_time=t), scratch=False)
    assert pitr.id == "shop-rst-2"
    again = db.restore("shop-rst-2", RestoreTarget(to_time=t), scratch=False)
    assert again.id == "shop-rst-2"  # a resumed restore does not start a second one
    assert db.inspect("shop-rst-2")["accepting_writes"]

    names = {i.id for i in db.instances()}
    assert names == {"shop-prod", "shop-rst-1", "shop-rst-2"}
    assert db.primary().id == "shop-prod"  # nothing moved until promote
    promoted = db.promote("shop-rst-2")
    assert promoted.role is DbRole.PRIMARY
    assert _db(client).primary().id == "shop-rst-2"  # another process agrees (the tag)
    tags = client.list_tags_for_resource(
        ResourceName=client.describe_db_instances(DBInstanceIdentifier="shop-prod")["DBInstances"][
            0
        ]["DBInstanceArn"]
    )["TagList"]
    assert PRIMARY_TAG not in {t["Key"] for t in tags}

    db.destroy("shop-rst-1")
    db.destroy("shop-rst-1")  # absent is fine
    assert "shop-rst-1" not in {i.id for i in db.instances()}


def test_dr5_a_read_replica_is_promoted_to_primary(aws: MotoServer) -> None:
    db = _db(_rds(aws))
    standby = db.start_standby("shop-dr")
    assert standby.role is DbRole.STANDBY
    assert {i.id: i.role for i in db.instances()}["shop-dr"] is DbRole.STANDBY
    assert not db.inspect("shop-dr")["accepting_writes"]  # a replica is read-only
    db.promote("shop-dr")
    assert db.primary().id == "shop-dr"
    assert db.inspect("shop-dr")["accepting_writes"]


def test_dr4_an_unknown_snapshot_is_refused_before_any_instance_is_made(
    aws: MotoServer, tmp_path: Path
) -> None:
    """The restore plan on the one runner over RDS: CheckRestorable refuses a snapshot id
    that does not exist; no instance was created, the primary stands."""
    from deployops.drivers.memory import MemoryCompute, MemoryProber
    from deployops.engine.operation import Env, NewOperation, Ports
    from deployops.engine.restore import HANDLERS, RESTORE_KIND, plan_db_restore
    from deployops.engine.runner import Runner
    from deployops.ports.recovery import Database
    from tests.support.memory_rig import make_rig

    db = _db(_rds(aws))
    rig = make_rig(tmp_path)
    runner = Runner(
        env=Env(
            ports=Ports(
                compute=MemoryCompute(cloud=rig.cloud),
                traffic=rig.traffic,
                metrics=rig.metrics,
                prober=MemoryProber(cloud=rig.cloud),
                extra={Database: db},
            ),
            store=rig.store,
            clock=rig.clock,
        ),
        handlers=HANDLERS,
    )
    plan = plan_db_restore(
        service="web", target=RestoreTarget(backup_id="nope"), instance_id="rst-x", repoint=False
    )
    with pytest.raises(DeploymentError, match="no database backup 'nope'"):
        runner.start(
            NewOperation(
                kind=RESTORE_KIND, environment="staging", target="web", owner="o@h:1", plan=plan
            )
        )
    assert [i.id for i in db.instances()] == ["shop-prod"]

    snap = db.backup("full")
    ok = runner.start(
        NewOperation(
            kind=RESTORE_KIND,
            environment="staging",
            target="web",
            owner="o@h:1",
            plan=plan_db_restore(
                service="web",
                target=RestoreTarget(backup_id=snap.id),
                instance_id="rst-y",
                repoint=False,
            ),
        )
    )
    assert ok.status == "succeeded"
    assert {i.id for i in db.instances()} == {"shop-prod", "rst-y"}


def test_dr5_route53_failover_record_change_is_read_back(aws: MotoServer) -> None:
    client = boto3.client("route53", region_name=REGION)
    zone = client.create_hosted_zone(Name="example.com", CallerReference="dr-test")
    zone_id = zone["HostedZone"]["Id"].split("/")[-1]
    client.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": "app.example.com.",
                        "Type": "CNAME",
                        "SetIdentifier": "primary",
                        "Failover": "PRIMARY",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": "app-tokyo.elb.amazonaws.com"}],
                    },
                },
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": "app.example.com.",
                        "Type": "CNAME",
                        "SetIdentifier": "secondary",
                        "Failover": "SECONDARY",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": "app-osaka.elb.amazonaws.com"}],
                    },
                },
            ]
        },
    )
    dns = Route53Dns(client=client, hosted_zone_id=zone_id)
    assert dns.current("app.example.com") == "app-tokyo.elb.amazonaws.com"
    assert dns.point("app.example.com", "app-osaka.elb.amazonaws.com") == (
        "app-osaka.elb.amazonaws.com"
    )
    assert dns.point("app.example.com", "app-osaka.elb.amazonaws.com") == (
        "app-osaka.elb.amazonaws.com"  # idempotent
    )
    plain = dns.point("api.example.com", "api-osaka.elb.amazonaws.com")  # created
    assert plain == "api-osaka.elb.amazonaws.com"
    with pytest.raises(NotFoundError, match=r"no record nothing\.example\.com"):
        dns.current("nothing.example.com")


def test_dr4_restore_db_through_the_cli_on_an_aws_environment(
    aws: MotoServer, tmp_path: Path
) -> None:
    """``deployops restore db --snapshot`` on an AWS environment: the same operation kind and
    steps, with RDS as the Database (the instance named by the Terraform outputs'
    db_endpoint); listed by ``deployments list``; the source instance stays the primary with
    ``--no-repoint``."""
    import json
    import os
    import subprocess
    import sys

    import yaml

    from tests.integration.aws.moto_rig import provision, session_for

    world = provision(session_for(aws))
    world.write_outputs(tmp_path / "tf-outputs.json")
    stack = world.outputs_document["cluster_name"]["value"]
    client = boto3.client("rds", region_name=REGION)
    client.create_db_instance(
        DBInstanceIdentifier=stack,
        DBInstanceClass="db.t4g.micro",
        Engine="postgres",
        MasterUsername="app",
        MasterUserPassword="not-a-real-password",
        AllocatedStorage=20,
        BackupRetentionPeriod=30,
    )
    client.create_db_snapshot(DBSnapshotIdentifier=f"{stack}-snap-1", DBInstanceIdentifier=stack)
    doc = {
        "project": "shop",
        "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
        "environments": {
            "staging": {"platform": "aws", "aws": {"terraform_outputs": "tf-outputs.json"}}
        },
        "services": {"web": {"port": 80, "image": "repo/web:{version}"}},
    }
    cfg = tmp_path / "deployops.yaml"
    cfg.write_text(yaml.safe_dump(doc), encoding="utf-8")
    exe = str(Path(sys.executable).parent / "deployops")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [exe, "-c", str(cfg), "-e", "staging", "-o", "json", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ),
            check=False,
        )

    out = cli("restore", "db", "--snapshot", f"{stack}-snap-1", "--no-repoint")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["status"] == "succeeded"
    op = result["id"]
    restored = client.describe_db_instances(DBInstanceIdentifier=op)["DBInstances"][0]
    assert restored["DBInstanceStatus"] == "available"
    rds = RdsDatabase(client=client, clock=VirtualClock(), instance=stack)
    assert rds.primary().id == stack  # --no-repoint: the source stays in use
    listed = json.loads(cli("deployments", "list").stdout)
    assert [(d["id"], d["kind"], d["status"]) for d in listed] == [(op, "restore", "succeeded")]
    bad = cli("restore", "db", "--snapshot", "nope", "--no-repoint")
    assert bad.returncode == 1
    assert "no database backup 'nope'" in bad.stderr
