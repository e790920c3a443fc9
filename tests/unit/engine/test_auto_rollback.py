"""Automatic rollback through the deployment engine (RB-1, RB-2) on the in-memory platform,
with the guide's real durations on a virtual clock: 5 min of 20 % errors, P99 > 1 s warned at
3 min and rolled back at 10 min, a memory leak scaled out then rolled back, a breach the
previous version shows too (not blamed), and a silent metric source.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from deployops.clock import VirtualClock
from deployops.engine.deploy import DeployRequest
from deployops.errors import RolledBackError
from deployops.store import EventRecord
from tests.support.memory_rig import Rig
from tests.support.rules_rig import deploy, make_rules_rig, rules_deployer, switched_at

T0 = VirtualClock().now()


def at(rig: Rig, deployment_id: str, seconds_after_switch: float) -> float:
    return switched_at(rig, deployment_id) + seconds_after_switch


def rolled_back(rig: Rig) -> str:
    (rec,) = rig.store.list_deployments(status=["rolled_back"])
    return rec.id


def test_rb1_error_rate_over_5_percent_for_5_minutes_rolls_back_with_report(
    tmp_path: Path,
) -> None:
    """RB-1 row 1 and RB-2: 20 % errors -> rollback when the 5-minute window is satisfied,
    a listener flip back to blue, the decision stored with evidence, an incident report,
    and the rollback recorded as its own deployment linked to the one it reverts (exit 3)."""
    rig = make_rules_rig(tmp_path)
    deploy(rig, "1.0.0")
    with pytest.raises(RolledBackError) as err:
        deploy(rig, "2.0.0")
    assert err.value.exit_code == 3
    assert rig.prod() == "web-blue"
    dep = rolled_back(rig)
    (decision,) = rig.store.decisions(deployment_id=dep)
    assert (decision.rule, decision.action) == ("error-rate", "rollback")
    ev = decision.evidence
    assert ev["caused_by_release"] is True
    assert ev["evaluation"]["rule"]["threshold"] == 5.0
    assert [p["value"] for p in ev["evaluation"]["periods"]][-5:] == [20.0] * 5
    assert ev["baseline"]["verdict"] == "ok"  # blue was fine: the release is to blame
    # Detected when the 5-minute window was satisfied, and the flip came at that instant.
    decided = (decision.ts - T0).total_seconds()
    assert decided == pytest.approx(at(rig, dep, 300), abs=10)
    flip_time, listener, tg = rig.cloud.switches[-1]
    assert (listener, tg) == ("web-prod", "web-blue")
    assert flip_time == pytest.approx(decided)
    # The decision notice goes out after the flip, the rollback notice after it.
    kinds = [n.kind for n in rig.notices]
    assert kinds[-2:] == ["decision", "deployment.rolled_back"]
    assert rig.notices[-2].severity == "critical"
    # The rollback is a deployment record of its own, linked to the one it reverts.
    (rb,) = [d for d in rig.store.list_deployments() if d.kind == "rollback"]
    assert rb.reverts == dep and rb.version == "1.0.0" and rb.status == "succeeded"
    assert [s.name for s in rig.store.steps_for(rb.id)] == ["SwitchListener", "VerifyRollback"]
    # The incident report, on disk and stored.
    report = tmp_path / ".deployops" / "reports" / f"{dep}.md"
    text = report.read_text()
    for section in ("## Summary", "## Impact", "## Timeline", "## Evidence", "## Verification"):
        assert section in text
    assert "error-rate" in text and "Failed requests (5xx)" in text
    (stored,) = rig.store.events(deployment_id=dep, kind="incident.report")
    assert stored.data["markdown"] == text
    assert stored.data["impact"]["error_rate"] == pytest.approx(20.0)
    assert str(report) in str(err.value.hint)


def test_rb1_p99_over_1s_warns_at_3_minutes_and_rolls_back_at_10(tmp_path: Path) -> None:
    """RB-1 row 2: P99 > 1000 ms for 3 min -> a warning (notified, stored); still breaching
    at 10 min -> rollback. The observation outlasts the 5-minute window for the escalation."""
    rig = make_rules_rig(tmp_path)
    deploy(rig, "1.0.0")
    with pytest.raises(RolledBackError):
        deploy(rig, "3.0.0")
    dep = rolled_back(rig)
    warning, rollback = rig.store.decisions(deployment_id=dep)
    assert (warning.rule, warning.action) == ("p99-latency", "notify")
    assert warning.evidence["verdict"] == "warning"
    assert (warning.ts - T0).total_seconds() == pytest.approx(at(rig, dep, 180), abs=10)
    assert (rollback.rule, rollback.action) == ("p99-latency", "rollback")
    assert rollback.evidence["verdict"] == "breaching"
    assert (rollback.ts - T0).total_seconds() == pytest.approx(at(rig, dep, 600), abs=10)
    assert rig.prod() == "web-blue"
    assert rig.store.events(deployment_id=dep, kind="observe.extended")
    assert any(n.kind == "decision" and "p99-latency -> notify" in n.title for n in rig.notices)


def test_rb1_memory_leak_scales_out_then_rolls_back_when_that_fails(tmp_path: Path) -> None:
    """RB-1 row 3: memory > 90 % for 2 min -> scale out (4 -> 6 replicas); the leak comes
    back and is still above the threshold 5 min after the added replicas were healthy ->
    rollback (the policy's definition of a failed scale-out)."""
    rig = make_rules_rig(tmp_path, blue_green={"stability_window": "30m"})
    deploy(rig, "1.0.0")
    with pytest.raises(RolledBackError):
        deploy(rig, "4.0.0")
    dep = rolled_back(rig)
    decisions = rig.store.decisions(deployment_id=dep)
    assert [(d.rule, d.action) for d in decisions] == [
        ("memory", "scale_out"),
        ("memory", "rollback"),
    ]
    (scaled,) = rig.store.events(deployment_id=dep, kind="scale_out")
    assert (scaled.data["from"], scaled.data["to"]) == (4, 6)
    assert "still breaching" in decisions[1].verdict
    gap = (decisions[1].ts - decisions[0].ts).total_seconds()
    assert gap >= 300  # the 5-minute grace after the added replicas were healthy
    assert rig.prod() == "web-blue"


def test_rb1_memory_with_no_room_to_scale_rolls_back_at_once(tmp_path: Path) -> None:
    """RB-1 row 3, second failure mode: already at the maximum -> no room -> rollback."""
    rig = make_rules_rig(
        tmp_path, blue_green={"stability_window": "30m"}, rollback={"max_replicas": 4}
    )
    deploy(rig, "1.0.0")
    with pytest.raises(RolledBackError):
        deploy(rig, "4.0.0")
    dep = rolled_back(rig)
    (decision,) = rig.store.decisions(deployment_id=dep)
    assert (decision.rule, decision.action) == ("memory", "rollback")
    assert "scale-out failed: no room to scale out" in decision.verdict
    assert rig.store.events(deployment_id=dep, kind="scale_out") == []


def test_rb1_cpu_over_85_percent_scales_out_and_never_rolls_back(tmp_path: Path) -> None:
    """RB-1 row 4: CPU > 85 % for 5 min -> try to scale out (within max_replicas, with the
    cooldown); when there is no room left it notifies, it does not roll back."""
    rig = make_rules_rig(
        tmp_path,
        blue_green={"stability_window": "20m"},
        rollback={"max_replicas": 6, "scale_out_cooldown": "2m"},
    )
    deploy(rig, "1.0.0")
    rec = deploy(rig, "5.0.0")
    assert rec.status == "succeeded" and rig.prod() == "web-green"
    decisions = rig.store.decisions(deployment_id=rec.id)
    assert [(d.rule, d.action) for d in decisions] == [("cpu", "scale_out"), ("cpu", "notify")]
    assert "no room to scale out" in decisions[1].verdict
    first = (decisions[0].ts - T0).total_seconds()
    assert first == pytest.approx(at(rig, rec.id, 300), abs=10)
    svc = rig.deployer().ports.compute.describe_service("web-green")
    assert svc is not None and svc.desired == 6


def test_rb1_health_check_failures_over_half_for_1_minute_roll_back(tmp_path: Path) -> None:
    """RB-1 row 5: more than 50 % of targets failing health checks for 1 min -> rollback.
    (3 of 4 replicas stop passing checks right after the switch.)"""
    rig = make_rules_rig(tmp_path)
    deploy(rig, "1.0.0")

    def break_green(event: EventRecord) -> None:
        if event.kind == "step.succeeded" and event.data.get("step") == "SwitchListener":
            for task in rig.cloud.services["web-green"].tasks[:3]:
                task.healthy_after = None

    d = rules_deployer(rig)
    d.reporter = break_green
    with pytest.raises(RolledBackError):
        d.deploy(DeployRequest(service="web", version="1.1.0"))
    dep = rolled_back(rig)
    (decision,) = rig.store.decisions(deployment_id=dep)
    assert decision.rule == "health-check-failures" and decision.action == "rollback"
    assert decision.evidence["evaluation"]["periods"][-1]["value"] == pytest.approx(75.0)
    assert (decision.ts - T0).total_seconds() == pytest.approx(at(rig, dep, 60), abs=10)


def test_rb2_baseline_equally_bad_notifies_not_caused_by_this_release(tmp_path: Path) -> None:
    """RB-2 correlation: a shared dependency fails and blue shows the same 20 % errors -> no
    rollback; a notify decision 'not caused by this release' is stored with the baseline."""
    rig = make_rules_rig(tmp_path)
    deploy(rig, "1.0.0")
    rig.cloud.faults["FAULT_ERROR_RATE"] = "0.2"  # everything fails the same way
    rec = deploy(rig, "1.1.0")
    assert rec.status == "succeeded" and rig.prod() == "web-green"
    (decision,) = rig.store.decisions(deployment_id=rec.id)
    assert decision.action == "notify" and decision.rule == "error-rate"
    assert "not caused by this release" in decision.verdict
    ev = decision.evidence
    assert ev["caused_by_release"] is False
    assert ev["baseline"]["verdict"] == "breaching"
    assert ev["baseline_source"] == {"scope": "web-blue", "source": "current"}
    assert any("not caused by this release" in n.title for n in rig.notices)
    assert not (tmp_path / ".deployops" / "reports").exists()


def test_rb2_detection_starts_within_one_sample_interval(tmp_path: Path) -> None:
    """RB-2: evaluation starts within 30 s of the first anomalous sample; our target is one
    sample interval. With 1 s periods and windows, green starts failing 20 % of requests
    during the observation and the rollback decision comes at most one interval later."""
    rig = make_rules_rig(
        tmp_path,
        blue_green={"sample_interval": 1, "stability_window": 60},
        rollback={"period": 1, "min_requests": 0, "rules": {"error-rate": {"window": 1}}},
    )
    deploy(rig, "1.0.0")
    began: list[float] = []

    def errors_start(event: EventRecord) -> None:
        # 20 seconds into the observation, green starts failing.
        if event.data.get("stage") == "observe" and not began and event.data["seconds_left"] <= 40:
            began.append((rig.clock.now() - T0).total_seconds())
            rig.cloud.service_faults["web-green"] = {"FAULT_ERROR_RATE": "0.2"}

    d = rules_deployer(rig)
    d.reporter = errors_start
    with pytest.raises(RolledBackError):
        d.deploy(DeployRequest(service="web", version="1.1.0"))
    (decision,) = rig.store.decisions(deployment_id=rolled_back(rig))
    assert decision.rule == "error-rate"
    decided = (decision.ts - T0).total_seconds()
    assert began and 0 < decided - began[0] <= 1.0 + 1e-6


def test_silent_metric_source_is_never_a_silent_pass_rb1(tmp_path: Path) -> None:
    """Bad input: the metric source answers with no data. The rules are not judged, and a
    release nobody could judge is not a success: by default it is rolled back, saying so."""
    rig = make_rules_rig(tmp_path)
    deploy(rig, "1.0.0")
    rig.metrics.silent = True
    with pytest.raises(RolledBackError) as caught:
        deploy(rig, "2.0.0")  # would fail 20 % of requests, but nobody can see it
    assert "web-green was not judged: error-rate (not judged: no data" in str(caught.value)
    assert rig.prod() == "web-blue"


def test_silent_metric_source_accepted_is_neither_healthy_nor_a_breach(tmp_path: Path) -> None:
    """With rollback.insufficient_data.action: accept the release goes live unjudged: a clear
    'metrics-silent' decision is stored and notified once, and the observation says what it
    did not judge."""
    rig = make_rules_rig(tmp_path, rollback={"insufficient_data": {"action": "accept"}})
    deploy(rig, "1.0.0")
    rig.metrics.silent = True
    rec = deploy(rig, "2.0.0")
    assert rec.status == "succeeded"
    (observe,) = [s for s in rig.store.steps_for(rec.id) if s.name == "Observe"]
    assert observe.result["rules_judged"] == 0
    assert observe.result["judgement"].startswith("judged 0 of 5 rules; not judged: error-rate")
    (decision,) = rig.store.decisions(deployment_id=rec.id)
    assert decision.rule == "metrics-silent" and decision.action == "notify"
    assert "not judged" in decision.verdict
    assert all(r["verdict"] == "insufficient_data" for r in decision.evidence["rules"].values())


def test_failing_metric_queries_are_their_own_verdict(tmp_path: Path) -> None:
    """Bad input: every query fails. After max_query_errors (3) in a row the verdict is
    query_error -> notify; never a rollback, never 'ok'."""
    rig = make_rules_rig(tmp_path, rollback={"insufficient_data": {"action": "accept"}})
    deploy(rig, "1.0.0")
    rig.metrics.fail_queries = True
    rec = deploy(rig, "2.0.0")
    assert rec.status == "succeeded" and rig.prod() == "web-green"
    decisions = rig.store.decisions(deployment_id=rec.id)
    assert decisions and {d.action for d in decisions} == {"notify"}
    first = decisions[0]
    assert first.evidence["verdict"] == "query_error"
    assert "3 consecutive metric queries failed" in first.verdict
    assert (first.ts - T0).total_seconds() == pytest.approx(at(rig, rec.id, 30), abs=1)


def test_missing_data_configured_as_breaching_rolls_back(tmp_path: Path) -> None:
    """Missing data counts as a breach only when configured: health-check failures with
    missing_data: breaching roll back a release whose metrics went silent."""
    rig = make_rules_rig(
        tmp_path,
        rollback={"rules": {"health-check-failures": {"missing_data": "breaching"}}},
    )
    deploy(rig, "1.0.0")
    rig.metrics.silent = True
    with pytest.raises(RolledBackError):
        deploy(rig, "1.1.0")
    (decision,) = rig.store.decisions(deployment_id=rolled_back(rig))
    assert decision.rule == "health-check-failures" and decision.action == "rollback"


def test_a_healthy_release_passes_every_rule(tmp_path: Path) -> None:
    """The control case: no decision, no report, blue scaled to 0 after 5 minutes."""
    rig = make_rules_rig(tmp_path)
    deploy(rig, "1.0.0")
    start = rig.clock.now()
    rec = deploy(rig, "1.1.0")
    assert rec.status == "succeeded"
    assert rig.store.decisions(deployment_id=rec.id) == []
    assert rig.clock.now() - start < timedelta(minutes=6)
    observe = next(s for s in rig.store.steps_for(rec.id) if s.name == "Observe")
    assert observe.result["checks"] == 30 and observe.result["extended_s"] == 0
