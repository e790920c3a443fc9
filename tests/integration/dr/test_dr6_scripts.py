"""DR-6: the guide's disaster-recovery scripts take the guide's own arguments.

Each script is run as the guide writes it — ``scripts/restore-db.sh`` (a snapshot id, or
``--to-time``), ``scripts/deploy-production.sh disaster-recovery``, ``scripts/dns-failover.sh
--hosted-zone-id <zone-id> --change-batch file://dns-failover.json`` and
``scripts/rollback.sh <deployment-id> [--dry-run]`` — first against a stand-in ``deployops``
that records the command line it was given (what each script asks deployops to do), then
against the real CLI: the restore's dry run, a rollback dry run, and the DNS failover changing
a Route 53 failover record on moto server (moto stores the record change; it never evaluates
the failover pair's health checks, which a real zone does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml

from tests.integration.aws.moto_rig import REGION, MotoServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = ROOT / "scripts"
DEPLOYOPS = str(Path(sys.executable).parent / "deployops")

STUB = """#!/usr/bin/env bash
printf '%s\\n' "$*" >> "$STUB_LOG"
case "$*" in
  *"deployments list"*) echo '[{"id": "dep-2", "status": "failed", "version": "1.4.0"},
                               {"id": "dep-1", "status": "succeeded", "version": "1.3.0"}]' ;;
esac
"""


def _run(
    script: str, *args: str, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DEPLOYOPS", "AWS_"))}
    base.pop("VERSION", None)
    return subprocess.run(
        ["bash", str(SCRIPTS / script), *args],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def stub(tmp_path: Path) -> tuple[dict[str, str], Path]:
    exe = tmp_path / "deployops-stub"
    exe.write_text(STUB)
    exe.chmod(0o755)
    log = tmp_path / "calls.log"
    return {"DEPLOYOPS": str(exe), "STUB_LOG": str(log)}, log


def _calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize(
    ("script", "args", "expected"),
    [
        (
            "restore-db.sh",
            ["rds:shop-prod-2026-03-01-02-00"],
            ["-e production restore db --snapshot rds:shop-prod-2026-03-01-02-00"],
        ),
        (
            "restore-db.sh",
            ["--to-time", "2026-03-01T09:41:00Z", "--dry-run"],
            ["-e production restore db --to-time 2026-03-01T09:41:00Z --dry-run"],
        ),
        (
            "deploy-production.sh",
            ["disaster-recovery"],
            [
                "-e production db start",
                "-e production -o json deployments list -n 50",
                "-e production deploy --version 1.3.0",
            ],
        ),
        (
            "dns-failover.sh",
            ["--hosted-zone-id", "Z0123456789", "--change-batch", "file://dns-failover.json"],
            [
                "-e production dr dns-failover --hosted-zone-id Z0123456789 "
                "--change-batch file://dns-failover.json"
            ],
        ),
        ("rollback.sh", ["dep-20261129-174501-7f3a"], ["rollback dep-20261129-174501-7f3a"]),
        (
            "rollback.sh",
            ["dep-20261129-174501-7f3a", "--dry-run"],
            ["rollback dep-20261129-174501-7f3a --dry-run"],
        ),
    ],
)
def test_dr6_each_guide_script_takes_the_guides_arguments(
    script: str,
    args: list[str],
    expected: list[str],
    stub: tuple[dict[str, str], Path],
    tmp_path: Path,
) -> None:
    env, log = stub
    out = _run(script, *args, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert _calls(log) == expected


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("restore-db.sh", ["--to-time"]),
        ("restore-db.sh", ["--nope"]),
        ("dns-failover.sh", ["--hosted-zone-id"]),
        ("dns-failover.sh", ["zone"]),
        ("deploy-production.sh", ["recover"]),
        ("rollback.sh", ["--nope"]),
    ],
)
def test_dr6_bad_arguments_exit_2_with_the_fix_and_run_nothing(
    script: str, args: list[str], stub: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, log = stub
    out = _run(script, *args, env=env, cwd=tmp_path)
    assert out.returncode == 2
    assert "fix:" in out.stderr or "needs" in out.stderr
    assert _calls(log) == []


@pytest.fixture
def project(tmp_path: Path) -> Path:
    doc = {
        "project": "shop",
        "environments": {"production": {"platform": "local"}},
        "services": {"web": {"port": 18481, "command": ["python3", "app.py"]}},
    }
    path = tmp_path / "deployops.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_dr6_the_real_restore_and_rollback_dry_runs(project: Path) -> None:
    env = {"DEPLOYOPS": DEPLOYOPS, "DEPLOYOPS_CONFIG": str(project)}
    planned = _run(
        "restore-db.sh",
        "--to-time",
        "2026-03-01T09:41:00Z",
        "--dry-run",
        env=env,
        cwd=project.parent,
    )
    assert planned.returncode == 0, planned.stderr
    assert "CheckRestorable: pending" in planned.stdout
    assert "RepointApplication: pending" in planned.stdout
    missing = _run(
        "rollback.sh", "dep-20261129-174501-7f3a", "--dry-run", env=env, cwd=project.parent
    )
    assert missing.returncode == 2, missing.stderr
    assert "dep-20261129-174501-7f3a" in missing.stderr and "fix:" in missing.stderr


def test_dr6_dns_failover_changes_the_route53_record_on_moto(project: Path) -> None:
    server = MotoServer()
    server.start()
    try:
        aws = {
            "AWS_ENDPOINT_URL": server.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }
        client = boto3.client(
            "route53",
            region_name=REGION,
            endpoint_url=server.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        zone = client.create_hosted_zone(Name="example.com", CallerReference="dr6")
        zone_id = zone["HostedZone"]["Id"].split("/")[-1]
        primary = {
            "Name": "app.example.com.",
            "Type": "CNAME",
            "SetIdentifier": "primary",
            "Failover": "PRIMARY",
            "TTL": 60,
            "ResourceRecords": [{"Value": "app-tokyo.elb.amazonaws.com"}],
        }
        client.change_resource_record_sets(
            HostedZoneId=zone_id,
            ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": primary}]},
        )
        batch = project.parent / "dns-failover.json"
        moved = {**primary, "ResourceRecords": [{"Value": "app-osaka.elb.amazonaws.com"}]}
        batch.write_text(
            json.dumps({"Changes": [{"Action": "UPSERT", "ResourceRecordSet": moved}]})
        )
        env = {"DEPLOYOPS": DEPLOYOPS, "DEPLOYOPS_CONFIG": str(project), **aws}
        args = ["--hosted-zone-id", zone_id, "--change-batch", f"file://{batch}"]
        dry = _run("dns-failover.sh", *args, "--dry-run", env=env, cwd=project.parent)
        assert dry.returncode == 0, dry.stderr
        assert "would point at app-osaka.elb.amazonaws.com" in dry.stdout
        out = _run("dns-failover.sh", *args, env=env, cwd=project.parent)
        assert out.returncode == 0, out.stderr
        rows = client.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
        (app,) = [r for r in rows if r["Name"] == "app.example.com."]
        assert app["ResourceRecords"] == [{"Value": "app-osaka.elb.amazonaws.com"}]
        assert app["Failover"] == "PRIMARY"
    finally:
        server.stop()
