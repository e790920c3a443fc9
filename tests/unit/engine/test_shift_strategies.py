"""Canary and linear deployments through the engine on the in-memory platform (virtual clock):
the plan's steps, a weighted shift per step with its bake, the switch and blue-green's tail, a
failing step putting every request back on the previous colour at once, and a platform without
the ``weights`` capability refusing the plan.

The in-memory platform cannot show how requests split on a real proxy nor per-colour
measurements from real traffic: tests/integration/local covers those.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from deployops.clock import VirtualClock
from deployops.domain.plan import Bake, ShiftTraffic, SwitchListener
from deployops.engine.deploy import DeployRequest
from deployops.errors import RolledBackError, UnsupportedError
from deployops.store import EventRecord
from tests.support.memory_rig import Rig
from tests.support.rules_rig import deploy, make_rules_rig, rules_deployer

CANARY = {"strategy": "canary", "canary": {"steps": [5, 25, 50, 100], "bake": "2m"}}


def _weights(rig: Rig) -> list[dict[str, int]]:
    return [w for _, name, w in rig.cloud.weight_changes if name == "web-prod"]


def test_canary_plan_shifts_bakes_then_switches_and_cleans_up(tmp_path: Path) -> None:
    """Part 2 of the canary strategy: after the smoke checks, per step below 100 % a shift
    and its bake (stored steps), then the switch, the stability window, blue to 0, its group
    deleted after the retention."""
    rig = make_rules_rig(tmp_path, **CANARY)
    deploy(rig, "1.0.0")
    plan, _ = rules_deployer(rig).plan(DeployRequest(service="web", version="1.1.0"))
    kinds = [s.kind for s in plan.steps]
    assert plan.strategy == "canary"
    smoke = kinds.index("SmokeTest")
    assert kinds[smoke + 1 : smoke + 7] == ["ShiftTraffic", "Bake"] * 3
    assert kinds[smoke + 7 :] == [
        "SwitchListener",
        "CheckTrafficMoved",
        "Observe",
        "ScaleService",
        "ScheduleDeleteTargetGroup",
    ]
    shifts = [s for s in plan.steps if isinstance(s, ShiftTraffic)]
    assert [s.percent for s in shifts] == [5, 25, 50]
    assert {(s.target_group, s.previous_target_group) for s in shifts} == {
        ("web-green", "web-blue")
    }
    bakes = [s for s in plan.steps if isinstance(s, Bake)]
    assert {b.window_s for b in bakes} == {120.0}
    assert all(b.baseline_target_group == "web-blue" for b in bakes)

    start = rig.clock.now()
    rec = deploy(rig, "1.1.0")
    assert rec.status == "succeeded"
    assert rig.prod() == "web-green"
    assert _weights(rig) == [
        {"web-blue": 95, "web-green": 5},
        {"web-blue": 75, "web-green": 25},
        {"web-blue": 50, "web-green": 50},
    ]
    # three bakes of 2 minutes, then the 5-minute stability window
    assert rig.clock.now() - start >= timedelta(minutes=11)
    steps = rig.store.steps_for(rec.id)
    assert [s.result["percent"] for s in steps if s.name == "Bake"] == [5, 25, 50]
    assert all(s.status == "succeeded" for s in steps)
    blue = rules_deployer(rig).ports.compute.describe_service("web-blue")
    assert blue is not None and blue.desired == 0
    (job,) = rig.store.jobs(status="pending")
    assert job.payload["target_group"] == "web-blue"


def test_linear_plan_has_equal_steps(tmp_path: Path) -> None:
    rig = make_rules_rig(tmp_path, strategy="linear", linear={"step_percent": 30, "bake": "1m"})
    deploy(rig, "1.0.0")
    plan, _ = rules_deployer(rig).plan(DeployRequest(service="web", version="1.1.0"))
    assert plan.strategy == "linear"
    assert [s.percent for s in plan.steps if isinstance(s, ShiftTraffic)] == [30, 60, 90]
    assert {s.window_s for s in plan.steps if isinstance(s, Bake)} == {60.0}
    # --strategy on the request picks it over the configured one
    (tmp_path / "b").mkdir()
    rig2 = make_rules_rig(tmp_path / "b")
    deploy(rig2, "1.0.0")
    plan2, _ = rules_deployer(rig2).plan(
        DeployRequest(service="web", version="1.1.0", strategy="linear")
    )
    assert plan2.strategy == "linear"
    assert [s.percent for s in plan2.steps if isinstance(s, ShiftTraffic)] == list(
        range(10, 100, 10)
    )


def test_first_canary_deploy_is_a_plain_switch(tmp_path: Path) -> None:
    """Nothing serves production yet: nothing to shift from or compare with."""
    rig = make_rules_rig(tmp_path, **CANARY)
    plan, _ = rules_deployer(rig).plan(DeployRequest(service="web", version="1.0.0"))
    assert plan.strategy == "canary"
    assert not [s for s in plan.steps if isinstance(s, ShiftTraffic | Bake)]
    assert any(isinstance(s, SwitchListener) for s in plan.steps)
    assert any("first deployment" in n for n in plan.notes)


def test_failed_bake_puts_every_request_back_on_blue_first(tmp_path: Path) -> None:
    """A release breaking the rollback rules at its first step (5 %): the weights of the new
    colour go back to 0 before the notices, the rollback is recorded, and the incident report
    names the share of traffic the new version had; the next steps never run."""
    rig = make_rules_rig(tmp_path, strategy="canary", canary={"steps": [5, 100], "bake": "10m"})
    deploy(rig, "1.0.0")
    with pytest.raises(RolledBackError) as err:
        deploy(rig, "2.0.0")  # 20 % of requests fail
    assert err.value.exit_code == 3
    assert rig.prod() == "web-blue"
    listener = rig.traffic.describe_listener("web-prod")
    assert listener.forwards == (("web-blue", 100),)
    assert _weights(rig) == [{"web-blue": 95, "web-green": 5}]
    (bad,) = rig.store.list_deployments(status=["rolled_back"])
    steps = rig.store.steps_for(bad.id)
    assert [(s.name, s.status) for s in steps][-1] == ("Bake", "failed")
    assert "SwitchListener" not in {s.name for s in steps}
    # the flip came before the decision was told to anyone
    flip_at, name, tg = rig.cloud.switches[-1]
    assert (name, tg) == ("web-prod", "web-blue")
    (decision,) = rig.store.decisions(deployment_id=bad.id)
    assert decision.action == "rollback"
    assert flip_at == pytest.approx((decision.ts - VirtualClock().now()).total_seconds())
    kinds = [n.kind for n in rig.notices]
    assert kinds.index("decision") < kinds.index("deployment.rolled_back")
    rollbacks = [r for r in rig.store.list_deployments() if r.kind == "rollback"]
    assert rollbacks and rollbacks[0].reverts == bad.id
    report = Path(rig.project.state_dir / "reports" / f"{bad.id}.md").read_text()
    assert "web-green" in report and "5" in report
    green = rules_deployer(rig).ports.compute.describe_service("web-green")
    assert green is not None and green.desired == 0  # torn down once it had no traffic


def test_platform_without_weights_refuses_canary(tmp_path: Path) -> None:
    from deployops.drivers.memory import MemoryTraffic

    class NoWeights(MemoryTraffic):
        capabilities = frozenset({"atomic_switch", "test_listener", "health_checks"})

    rig = make_rules_rig(tmp_path, **CANARY)
    deploy(rig, "1.0.0")
    d = rules_deployer(rig)
    d.ports = d.planner.ports = replace(d.ports, traffic=NoWeights(cloud=rig.cloud))
    with pytest.raises(UnsupportedError) as err:
        d.deploy(DeployRequest(service="web", version="1.1.0"))
    assert err.value.exit_code == 2
    assert "'weights'" in err.value.message


def _with_versions(**extra: dict[str, str]) -> dict[str, dict[str, str]]:
    from tests.support.rules_rig import VERSIONS

    return {**VERSIONS, **extra}


def test_release_failing_3_percent_is_caught_by_the_comparison_at_5_percent(
    tmp_path: Path,
) -> None:
    """3 % of errors stays under the rollback rules' 5 % threshold; the comparison with blue
    over the step's window fails it (Fisher's test on the two colours' counts), so the 25 %
    step never happens. The judgement is stored with its numbers and is the trigger."""
    rig = make_rules_rig(
        tmp_path,
        strategy="canary",
        canary={"steps": [5, 25, 100], "bake": "5m"},
        version_environment=_with_versions(**{"2.3.0": {"FAULT_ERROR_RATE": "0.03"}}),
    )
    deploy(rig, "1.0.0")
    with pytest.raises(RolledBackError, match="failed its comparison with web-blue"):
        deploy(rig, "2.3.0")
    assert rig.traffic.describe_listener("web-prod").forwards == (("web-blue", 100),)
    assert _weights(rig) == [{"web-blue": 95, "web-green": 5}]
    (bad,) = rig.store.list_deployments(status=["rolled_back"])
    (j,) = rig.store.judgements(deployment_id=bad.id)
    assert j.verdict == "fail"
    assert j.detail["window"]["percent"] == 5
    (decision,) = rig.store.decisions(deployment_id=bad.id)
    assert (decision.rule, decision.action) == ("canary-comparison", "rollback")
    assert decision.evidence["comparison"]["verdict"] == "fail"
    # the memory platform keeps no latency distribution: only the error rate was compared
    assert [m["name"] for m in decision.evidence["comparison"]["metrics"]] == ["error_rate"]
    rows = rig.store.measurements(deployment_id=bad.id)
    assert {r.role for r in rows} >= {"canary", "baseline"}
    report = (rig.project.state_dir / "reports" / f"{bad.id}.md").read_text()
    assert "canary-comparison" in report


def _marginal_rig(tmp_path: Path, **analysis: object) -> Rig:
    """A canary whose comparison can only be marginal: it asks more requests per colour
    than the step will ever see."""
    rollback = {
        "analysis": {
            "metrics": {"error_rate": {"min_samples": 10**6}},
            "decision_timeout": "10m",
            **analysis,
        },
        "insufficient_data": {"max_extension": "1m"},
    }
    return make_rules_rig(
        tmp_path, strategy="canary", canary={"steps": [10, 100], "bake": "2m"}, rollback=rollback
    )


def test_marginal_step_holds_until_decided_continue(tmp_path: Path) -> None:
    """Marginal with on_marginal: hold waits for `deployops decide ID --continue`; the rollout
    then goes on to the switch."""
    from deployops.engine.observe.decision import decide

    rig = _marginal_rig(tmp_path)
    deploy(rig, "1.0.0")
    d = rules_deployer(rig)
    decided: list[str] = []

    def operator(event: EventRecord) -> None:
        if event.data.get("stage") == "hold" and not decided:
            dep = str(event.deployment_id)
            decide(rig.store, rig.clock, dep, decision="continue", actor="ops", reason="looked")
            decided.append(dep)

    d.reporter = operator
    rec = d.deploy(DeployRequest(service="web", version="1.1.0"))
    assert rec.status == "succeeded"
    assert decided == [rec.id]
    (j,) = rig.store.judgements(deployment_id=rec.id)
    assert (j.verdict, j.held, j.decision, j.decided_by) == ("marginal", True, "continue", "ops")
    assert rig.prod() == "web-green"


def test_marginal_step_without_a_decision_rolls_back_at_the_timeout(tmp_path: Path) -> None:
    rig = _marginal_rig(tmp_path)
    deploy(rig, "1.0.0")
    started = rig.clock.monotonic()
    with pytest.raises(RolledBackError, match="no decision in time"):
        deploy(rig, "1.1.0")
    assert rig.clock.monotonic() - started >= 600
    assert rig.traffic.describe_listener("web-prod").forwards == (("web-blue", 100),)
    (bad,) = rig.store.list_deployments(status=["rolled_back"])
    (j,) = rig.store.judgements(deployment_id=bad.id)
    assert j.decision == "timeout"


def test_marginal_step_continues_when_configured(tmp_path: Path) -> None:
    rig = _marginal_rig(tmp_path, on_marginal="continue")
    deploy(rig, "1.0.0")
    rec = deploy(rig, "1.1.0")
    assert rec.status == "succeeded"
    (j,) = rig.store.judgements(deployment_id=rec.id)
    assert (j.verdict, j.held) == ("marginal", False)
