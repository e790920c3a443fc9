"""DR-1 freshness alarm through the MON-2 routes: with no restorable point (or one older than
the RPO allows) ``deployops backup freshness`` exits 1 and a warning reaches the channel."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.notify.conftest import http_receiver
from tests.integration.notify.receivers import HttpReceiver

pytestmark = pytest.mark.integration
__all__ = ["http_receiver"]

DEPLOYOPS = str(Path(sys.executable).parent / "deployops")


def test_dr1_stale_backups_raise_the_freshness_alarm_through_the_routes(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    (tmp_path / "data").mkdir()
    doc = {
        "project": "shop",
        "environments": {"development": {"platform": "local"}},
        "services": {"web": {"port": 18481, "command": ["python3", "app.py"]}},
        "notifications": {
            "channels": {"ops": {"type": "slack", "webhook_url": http_receiver.url("/hooks/ops")}},
            "routes": {"warning": ["ops"]},
        },
    }
    (tmp_path / "deployops.yaml").write_text(yaml.safe_dump(doc))
    out = subprocess.run(
        [DEPLOYOPS, "-c", str(tmp_path / "deployops.yaml"), "-o", "json", "backup", "freshness"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 1, out.stderr
    report = json.loads(out.stdout)
    assert report["stale"] == 2
    assert {t["target"] for t in report["targets"]} == {"database", "app-data"}

    def delivered() -> bool:
        return len(http_receiver.bodies("/hooks/ops")) >= 2

    from tests.fixtures_local import LocalPlatformHandle

    LocalPlatformHandle.wait_until(delivered, timeout_s=20, what="two stale warnings delivered")
    text = json.dumps(http_receiver.bodies("/hooks/ops"))
    assert "stale" in text


def test_dr1_dr7_dr_status_shows_the_test_restore_and_freshness_the_controller_schedules(
    tmp_path: Path,
) -> None:
    """``dr status``: each drill scenario due now (never drilled), the test restore due now,
    and freshness for the targets the environment has (application data: its path exists,
    never backed up: stale; no database started: not watched)."""
    (tmp_path / "data").mkdir()
    doc = {
        "project": "shop",
        "environments": {"development": {"platform": "local"}},
        "services": {"web": {"port": 18482, "command": ["python3", "app.py"]}},
    }
    (tmp_path / "deployops.yaml").write_text(yaml.safe_dump(doc))
    out = subprocess.run(
        [DEPLOYOPS, "-c", str(tmp_path / "deployops.yaml"), "-o", "json", "dr", "status"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert {r["scenario"] for r in status["drills"] if r["overdue"]} == {
        "db-loss",
        "data-corruption",
        "region-failure",
        "security-incident",
    }
    assert status["test_restore"]["last_at"] is None and status["test_restore"]["overdue"]
    assert [(f["target"], f["ok"]) for f in status["freshness"]] == [("app-data", False)]
