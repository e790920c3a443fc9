"""The incident report after an automatic rollback (RB-2 "verify"): what it shows, and that a
report which cannot be written never undoes or hides the rollback itself."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from deployops.clock import VirtualClock
from deployops.domain.policy import Action
from deployops.engine.incident import render_incident_report
from deployops.engine.observe.health import Verdict
from deployops.errors import RolledBackError
from deployops.store import DecisionRecord, DeploymentRecord, EventRecord, StepRecord
from tests.support.rules_rig import deploy, make_rules_rig

T0 = VirtualClock().now()


def test_rb2_report_shows_trigger_timeline_evidence_impact_and_verification() -> None:
    rec = DeploymentRecord(
        id="dep-1",
        environment="production",
        service="web",
        version="2.0.0",
        strategy="blue-green",
        status="rolled_back",
        created_at=T0,
        updated_at=T0,
        task_definition="web:2",
        target_group="web-green",
        previous_version="1.0.0",
        previous_task_definition="web:1",
        previous_target_group="web-blue",
    )
    decision = DecisionRecord(
        ts=T0 + timedelta(minutes=5),
        rule="error-rate",
        verdict="ErrorRate > 5 in 5 of 5 periods",
        action="rollback",
        deployment_id="dep-1",
        evidence={
            "caused_by_release": True,
            "evaluation": {
                "condition": "ErrorRate Average > 5 in 5 of 5 periods of 60s",
                "verdict": "breaching",
                "reason": "ErrorRate > 5",
                "periods": [
                    {"start": "t0", "value": 20.0, "samples": 100, "state": "breach"},
                    {"start": "t1", "value": None, "samples": 0, "state": "missing"},
                ],
            },
            "baseline": {"verdict": "ok", "reason": "0 of 5 periods breach"},
            "baseline_source": {"scope": "web-blue", "source": "current"},
        },
    )
    text = render_incident_report(
        rec,
        steps=[StepRecord("dep-1", 0, "SwitchListener", "succeeded", T0, phase="switch")],
        events=[EventRecord(ts=T0 + timedelta(seconds=3), kind="x", message="a | b")],
        decisions=[decision],
        rollback_id="dep-2",
        flip={"listener": "web-prod", "from": "web-green", "to": "web-blue", "ms": 1.25, "at": "t"},
        verification={
            "summary": "web-blue verified",
            "checks": [{"check": "health", "status": "ok", "detail": "4/4 healthy"}],
        },
        impact={
            "exposed_s": 300.0,
            "share_of_traffic": 100,
            "requests": 3000,
            "failed_requests": 600,
            "error_rate": 20.0,
        },
        trigger=Verdict(
            action=Action.ROLLBACK,
            rule="error-rate",
            reason="ErrorRate > 5",
            evidence={"caused_by_release": True},
        ),
        error="",
        generated_at=T0 + timedelta(minutes=6),
    )
    assert text.startswith("# Incident: web 2.0.0 rolled back in production")
    assert "| Returned to | 1.0.0 (`web:1`, web-blue) |" in text
    assert "| Rollback record | `dep-2` (reverts `dep-1`) |" in text
    assert "web-prod switched web-green → web-blue in 1.2 ms" in text
    assert "- Failed requests (5xx): 600 (20 %)" in text
    assert "| 3.0 | info: a \\| b |" in text  # a pipe in a message cannot break the table
    assert "- Baseline (web-blue, current): ok — 0 of 5 periods breach" in text
    assert "| t0 | 20 | 100 | breach |" in text and "| t1 | - | 0 | missing |" in text
    assert "| health | ok | 4/4 healthy |" in text


def test_a_report_that_cannot_be_written_does_not_undo_the_rollback(tmp_path: Path) -> None:
    """Bad input: .deployops/reports cannot be created. The flip back to blue stands, the
    exit code is still 3 (rolled back), the report is still stored as an event, and the
    failure is recorded."""
    rig = make_rules_rig(tmp_path)
    deploy(rig, "1.0.0")
    (tmp_path / ".deployops").write_text("not a folder")
    with pytest.raises(RolledBackError) as err:
        deploy(rig, "2.0.0")
    assert err.value.exit_code == 3
    assert rig.prod() == "web-blue"
    (dep,) = rig.store.list_deployments(status=["rolled_back"])
    (stored,) = rig.store.events(deployment_id=dep.id, kind="incident.report")
    assert "## Evidence" in stored.data["markdown"]
    (failed,) = rig.store.events(deployment_id=dep.id, kind="incident.failed")
    assert "cannot write the incident report" in failed.message


def test_the_report_explains_a_comparison_in_numbers_and_lists_the_measurements(
    tmp_path: Path,
) -> None:
    """Issue 19: a stored judgement appears with each metric's reason; the windows the
    observation kept are summed per colour."""
    from deployops.clock import VirtualClock as Clock
    from deployops.domain.judge import ColourWindow, JudgePolicy, judge
    from deployops.engine.observe.decision import record_judgement

    rig = make_rules_rig(tmp_path)
    deploy(rig, "1.0.0")
    with pytest.raises(RolledBackError):
        deploy(rig, "2.0.0")
    (dep,) = rig.store.list_deployments(status=["rolled_back"])
    text = (tmp_path / ".deployops" / "reports" / f"{dep.id}.md").read_text()
    assert "## Measurements" in text
    assert "| previous |" in text and "| new |" in text
    assert "| 20 % |" in text  # the new colour's error rate over its windows
    # A comparison stored for a deployment is rendered with every metric's reason.
    base = ColourWindow(500, 1, (0.1,) * 500)
    bad = ColourWindow(500, 15, (0.1,) * 500)
    stored = record_judgement(
        rig.store,
        Clock(),
        deployment_id=dep.id,
        environment="staging",
        service="web",
        source="canary step 1 (5 %)",
        judgement=judge(base, bad, JudgePolicy()),
    )
    report = render_incident_report(
        dep,
        steps=[],
        events=[],
        decisions=[],
        rollback_id="dep-x",
        flip=None,
        verification={},
        impact={},
        trigger=None,
        error="failed",
        generated_at=T0,
        judgements=[stored],
    )
    assert "## Comparison with the previous version" in report
    assert "canary step 1 (5 %): **fail** (score 60)" in report
    assert "| error_rate (critical) | fail | error rate 3.0 % vs 0.2 % (p=0.0002, +2.8 pp" in report
