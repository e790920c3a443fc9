"""DR-7 drills end to end on the local platform: marker rows every second through the sample
service, the failure injected, the recovery run, the achieved RTO and RPO measured against
the DR-1 targets, notifications delivered to a real HTTP receiver standing for Slack, a
Markdown and JSON report written; ``dr status`` shows the last drill and when the next is due.
Level 2 (DR-4: db-loss, data-corruption) and level 3 (DR-5: region-failure, a standby promoted)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.conftest import Project
from tests.e2e.dr_support import db_project, start_db_and_deploy
from tests.integration.notify.receivers import HttpReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.integration]
__all__ = ["db_project", "http_receiver"]

from tests.integration.notify.conftest import http_receiver  # noqa: E402


def _notify_to(p: Project, rx: HttpReceiver) -> None:
    doc = yaml.safe_load(p.path.read_text())
    doc["notifications"] = {
        "channels": {"team": {"type": "slack", "webhook_url": rx.url("/hooks/team")}},
        "routes": {"info": ["team"], "warning": ["team"], "critical": ["team"]},
    }
    doc["environments"]["production"] = doc["environments"]["development"]
    p.path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _drill(p: Project, scenario: str) -> tuple[int, dict[str, Any], str]:
    out = p.cli("-o", "json", "dr", "drill", scenario, "--wait", "180", timeout=400)
    doc = json.loads(out.stdout) if out.stdout.strip() else {}
    return out.returncode, doc, out.stderr


def _items(p: Project) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{p.config.services['web'].port}/items?limit=1000"
    return list(httpx.get(url, timeout=10).json()["items"])


@pytest.fixture
def drill_project(db_project: Project, http_receiver: HttpReceiver) -> Iterator[Project]:
    _notify_to(db_project, http_receiver)
    start_db_and_deploy(db_project)
    return db_project


def test_dr7_db_loss_data_corruption_and_region_failure_drills_meet_their_targets(
    drill_project: Project, http_receiver: HttpReceiver
) -> None:
    p = drill_project
    rc, doc, err = _drill(p, "db-loss")
    assert rc == 0, (err[-1500:], doc.get("outcome"))
    o = doc["outcome"]
    assert o["passed"] and o["rto_met"] and o["rpo_met"]
    assert 0 < o["rto_s"] <= 3600  # DR-4: failure -> serving, measured
    assert o["rpo_s"] <= 300  # DR-1: 5 minutes
    assert doc["markers_committed"] >= 3
    assert doc["notifications"] == ["team"]
    assert Path(doc["report_markdown"]).read_text().startswith("# Drill")
    assert json.loads(Path(doc["report_json"]).read_text())["outcome"]["passed"]
    assert len(http_receiver.bodies("/hooks/team")) >= 2  # injected + finished
    status = json.loads(p.cli("-o", "json", "db", "status").stdout)
    assert status["primary"].endswith("-restore")

    rc, doc, err = _drill(p, "data-corruption")
    assert rc == 0, (err[-1500:], doc.get("outcome"))
    assert doc["outcome"]["rpo_s"] <= 300
    assert not [i for i in _items(p) if i["body"] == "CORRUPTED"]  # the bad write is gone

    rc, doc, err = _drill(p, "region-failure")
    assert rc == 0, (err[-1500:], doc.get("outcome"))
    assert doc["outcome"]["rto_met"]
    status = json.loads(p.cli("-o", "json", "db", "status").stdout)
    assert status["primary"].endswith("-standby")  # DR-5: the standby was promoted

    dr = json.loads(p.cli("-o", "json", "dr", "status").stdout)
    by = {r["scenario"]: r for r in dr["drills"]}
    assert by["db-loss"]["passed"] and not by["db-loss"]["overdue"]
    assert by["security-incident"]["last_drill"] is None
    assert by["security-incident"]["overdue"]


def test_dr7_production_needs_the_flag_and_a_reason_and_nothing_is_touched(
    drill_project: Project,
) -> None:
    p = drill_project
    before = json.loads(p.cli("-o", "json", "db", "status").stdout)
    out = p.cli("-e", "production", "dr", "drill", "db-loss")
    assert out.returncode == 2
    assert "--i-understand" in out.stderr
    assert json.loads(p.cli("-o", "json", "db", "status").stdout) == before
    sec = p.cli("dr", "drill", "security-incident")  # .env.local cannot rotate
    assert sec.returncode == 2
    assert "cannot rotate" in sec.stderr and "fix:" in sec.stderr
    assert json.loads(p.cli("-o", "json", "db", "status").stdout) == before


def test_dr7_security_incident_rotates_every_secret_and_redeploys(
    db_project: Project, http_receiver: HttpReceiver
) -> None:
    """DR-7 security-incident: every managed secret is declared leaked; the drill rotates each
    (through the rotating store) and replaces every replica, measures the RTO from the
    declaration to serving on the new values, loses no data, and reports like the others."""
    p = db_project
    _notify_to(p, http_receiver)
    doc = yaml.safe_load(p.path.read_text())
    doc["secrets"] = {"stores": {"development": {"type": "encrypted-file"}}}
    p.path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert p.cli("secrets", "keygen").returncode == 0
    start_db_and_deploy(p)
    before = {
        s["name"]: s["last_rotated"]
        for s in json.loads(p.cli("-o", "json", "secrets", "status").stdout)["secrets"]
    }
    rc, doc, err = _drill(p, "security-incident")
    assert rc == 0, (err[-1500:], doc.get("outcome"))
    o = doc["outcome"]
    assert o["passed"] and o["rto_met"] and o["rpo_met"]
    assert 0 < o["rto_s"] <= 3600
    assert o["rpo_s"] == 0  # nothing was lost: the service served throughout
    assert doc["notifications"] == ["team"]
    after = {
        s["name"]: s["last_rotated"]
        for s in json.loads(p.cli("-o", "json", "secrets", "status").stdout)["secrets"]
    }
    assert set(after) == set(before) and all(after[n] and after[n] != before[n] for n in after)
    shown = json.loads(p.cli("-o", "json", "deployments", "show", doc["drill_id"]).stdout)
    steps = [(s["name"], s["status"]) for s in shown["steps"]]
    assert ("RotateAllSecrets", "succeeded") in steps
    assert ("RedeployService", "succeeded") in steps
    live = p.prod_target_group()
    assert all(t["healthy"] for t in p.service(live)["tasks"] if t["state"] == "RUNNING")
