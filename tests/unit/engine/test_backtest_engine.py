"""The backtest over the store (issue 19): canary steps' windows (roles canary/baseline) are
replayed through the judge; the policy's analysis section decides what a comparison does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from deployops.config.rollback import RollbackSettings
from deployops.domain.sketch import LatencySketch
from deployops.engine.backtest import run_backtest
from deployops.store import DecisionRecord, DeploymentRecord, MeasurementRecord, StateStore

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def _canary_history(store: StateStore) -> None:
    """One canary at 5 %: the new version fails 3 % of 500 requests, the old 0.2 %; it was
    rolled back at the end of the step (T+60 s)."""
    store.create_deployment(
        DeploymentRecord(
            id="dep-c",
            environment="staging",
            service="web",
            version="2.0.0",
            strategy="canary",
            status="rolled_back",
            created_at=T0,
            updated_at=T0,
        )
    )
    sketch = LatencySketch()
    for k in range(500):
        sketch.add(20.0 + k % 50)
    for role, scope, errors in (("canary", "web-green", 15), ("baseline", "web-blue", 1)):
        store.add_measurements(
            [
                MeasurementRecord(
                    deployment_id="dep-c",
                    environment="staging",
                    service="web",
                    colour=scope.rsplit("-", 1)[1],
                    role=role,
                    scope=scope,
                    source="bake 5%",
                    start=T0,
                    end=T0 + timedelta(minutes=1),
                    requests=500,
                    errors=errors,
                    latency=sketch.to_json(),
                )
            ]
        )
    store.add_decision(
        DecisionRecord(
            ts=T0 + timedelta(minutes=1),
            rule="comparison",
            verdict="fail",
            action="rollback",
            deployment_id="dep-c",
        )
    )


def test_a_canary_step_is_replayed_through_the_judge(tmp_path: Path) -> None:
    store = StateStore.open(f"sqlite:///{tmp_path / 's.db'}")
    _canary_history(store)
    (same,) = run_backtest(store, settings_for=lambda _s: RollbackSettings())
    assert same.change.value == "same"
    assert same.would.value == "rollback"
    assert same.would_at == T0 + timedelta(minutes=1)
    (j,) = same.judgements
    assert j.judgement.verdict.value == "fail"
    assert j.judgement.metric("error_rate").reason.startswith("error rate 3.0 % vs 0.2 %")
    # A looser analysis (a 5 pp floor) would have let it through: a miss.
    loose = RollbackSettings.model_validate(
        {"analysis": {"metrics": {"error_rate": {"min_effect_absolute": 5}}}}
    )
    (missed,) = run_backtest(store, settings_for=lambda _s: loose)
    assert missed.change.value == "miss"
    assert missed.to_dict()["judgements"][0]["verdict"] == "pass"


def test_the_replay_of_the_live_policy_agrees_with_the_live_observation(tmp_path: Path) -> None:
    """Fidelity: six deployments through the real engine and rules observer on the in-memory
    platform (virtual clock) — fine, 20 % errors, P99 1.5 s (escalated), a memory leak
    (scaled out, then rolled back after the grace), a CPU hog (scaled out, kept) — replayed
    from their kept windows under the same policy: every one decided as it happened, within a
    period."""
    from deployops.config.rollback import effective_rollback
    from deployops.errors import RolledBackError
    from tests.support.rules_rig import deploy, make_rules_rig

    rig = make_rules_rig(tmp_path)
    outcomes = {}
    for version in ("1.0.0", "2.0.0", "1.1.0", "3.0.0", "4.0.0", "5.0.0"):
        try:
            deploy(rig, version)
            outcomes[version] = "succeeded"
        except RolledBackError:
            outcomes[version] = "rolled back"
    assert list(outcomes.values()).count("rolled back") == 3
    results = run_backtest(
        rig.store, settings_for=lambda service: effective_rollback(rig.project, service)
    )
    by_version = {r.deployment.version: r for r in results}
    assert set(by_version) == set(outcomes)
    assert {v: r.change.value for v, r in by_version.items()} == dict.fromkeys(outcomes, "same")
    assert {v: r.happened for v, r in by_version.items()} == outcomes
    assert by_version["4.0.0"].would_rule == "memory"
    assert by_version["3.0.0"].would_rule == "p99-latency"
