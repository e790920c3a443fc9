"""DR-2 / DR-4 through the CLI on the local platform: the sample service writes to the
application's PostgreSQL; ``deployops restore db --to-time`` restores into a new instance,
verifies it and rolls the replicas onto it under load with 0 failed requests; the rows after
the target are gone, the ones before it are there, and the old primary was never touched; the
next deploy keeps the restored database."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import yaml

from deployops.drivers.local.load import Load
from tests.e2e.conftest import Project
from tests.e2e.dr_support import db_project, start_db_and_deploy

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.integration]
__all__ = ["db_project"]  # the fixture


def _url(p: Project, path: str) -> str:
    return f"http://127.0.0.1:{p.config.services['web'].port}{path}"


def _post(p: Project, body: str) -> dict[str, Any]:
    r = httpx.post(_url(p, "/items"), json={"body": body}, timeout=10)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_dr2_dr4_restore_to_time_repoints_the_app_under_load_with_no_failed_request(
    db_project: Project,
) -> None:
    p = db_project
    start_db_and_deploy(p)

    _post(p, "before-backup")
    backup = p.cli("-o", "json", "backup", "run", "--target", "database")
    assert backup.returncode == 0, backup.stderr
    finished = datetime.fromisoformat(json.loads(backup.stdout)["backups"][0]["finished_at"])
    while datetime.now(finished.tzinfo) < finished + timedelta(seconds=1.1):
        time.sleep(0.05)
    a = _post(p, "a")
    time.sleep(0.3)
    b = _post(p, "b")
    _post(p, "c")
    ta, tb = datetime.fromisoformat(a["created_at"]), datetime.fromisoformat(b["created_at"])
    target = ta + (tb - ta) / 2
    old_port = (
        p.config.services["web"].environment.get("DB_PORT")
        or json.loads(p.cli("-o", "json", "db", "status").stdout)["instances"][0]["port"]
    )

    with Load(_url(p, "/"), workers=3, max_seconds=180) as load:
        time.sleep(0.5)
        restored = p.cli(
            "-o", "json", "restore", "db", "--to-time", target.isoformat(), timeout=300
        )
        time.sleep(0.5)
    assert restored.returncode == 0, restored.stderr
    res = load.result
    assert res.total > 50
    assert res.failed == 0, (res.by_status, res.errors[:5])

    doc = json.loads(restored.stdout)
    assert doc["status"] == "succeeded"
    new_port = doc["results"][1]["port"]
    assert str(new_port) != str(old_port)
    bodies = [i["body"] for i in httpx.get(_url(p, "/items"), timeout=10).json()["items"]]
    assert bodies == ["before-backup", "a"]

    status = json.loads(p.cli("-o", "json", "db", "status").stdout)
    assert status["primary"] == doc["plan"]["operation_id"]
    old = next(i for i in status["instances"] if i["id"] == "primary-1")
    assert old["running"]  # the old primary was not touched; it is kept for inspection
    health = httpx.get(_url(p, "/health"), timeout=10).json()
    assert health["database"] == "ok"

    # The restore survives the next deploy: deployops.yaml still names the old primary, the
    # new replicas use the restored database (the endpoint the restore recorded).
    written = yaml.safe_load(p.path.read_text())["services"]["web"]["environment"]
    assert str(written["DB_PORT"]) == str(old_port) != str(new_port)
    deployed = p.cli("-o", "json", "deploy", "--version", "1.0.1", timeout=300)
    assert deployed.returncode == 0, deployed.stderr
    for _ in range(6):  # every replica answering is a new one, reading the restored rows
        assert httpx.get(_url(p, "/"), timeout=10).json()["version"] == "1.0.1"
        bodies = [i["body"] for i in httpx.get(_url(p, "/items"), timeout=10).json()["items"]]
        assert bodies == ["before-backup", "a"]


def test_restore_refuses_a_time_in_the_future_and_changes_nothing(db_project: Project) -> None:
    p = db_project
    assert p.cli("db", "start").returncode == 0
    assert p.cli("backup", "run", "--target", "database").returncode == 0
    future = (datetime.now().astimezone() + timedelta(hours=1)).isoformat()
    out = p.cli("restore", "db", "--to-time", future, "--no-repoint")
    assert out.returncode == 1, out.stderr
    assert "in the future" in out.stderr
    assert "fix:" in out.stderr
    status = json.loads(p.cli("-o", "json", "db", "status").stdout)
    assert [i["id"] for i in status["instances"]] == ["primary-1"]
    bad = p.cli("restore", "db", "--to-time", "yesterday-ish")
    assert bad.returncode == 2
    assert "ISO 8601" in bad.stderr
