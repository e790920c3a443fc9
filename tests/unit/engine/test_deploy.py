"""The deployment engine on the in-memory platform, with the guide's real durations on a
virtual clock (60 s health wait, 5 min stability, 24 h target-group retention).

The in-memory platform cannot show real processes or HAProxy timing: tests/e2e covers those.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from deployops.engine.deploy import DeployRequest
from deployops.errors import ConfigError, DeploymentError, LockHeldError, RolledBackError
from tests.support.memory_rig import Rig


def deploy(rig: Rig, version: str, **kw: object) -> object:
    return rig.deployer().deploy(DeployRequest(service="web", version=version, **kw))  # type: ignore[arg-type]


def test_first_deploy_goes_live_on_blue_dep1_dep2(rig: Rig) -> None:
    rec = deploy(rig, "1.0.0")
    assert rec.status == "succeeded"  # type: ignore[attr-defined]
    assert rig.prod() == "web-blue"
    svc = rig.deployer().ports.compute.describe_service("web-blue")
    assert svc is not None and svc.healthy == 4  # DEP-2: desired_count = 4, all healthy
    steps = rig.store.steps_for(rec.id)  # type: ignore[attr-defined]
    assert [s.name for s in steps][:2] == ["RegisterTaskDefinition", "CreateTargetGroup"]
    assert all(s.status == "succeeded" for s in steps)
    assert rig.cloud.target_groups["web-blue"].path == "/health"  # DEP-1


def test_blue_green_switches_observes_5_minutes_and_cleans_up_dep3_dep4(rig: Rig) -> None:
    deploy(rig, "1.0.0")
    start = rig.clock.now()
    rec = deploy(rig, "1.1.0")
    assert rec.status == "succeeded"  # type: ignore[attr-defined]
    assert rec.previous_version == "1.0.0"  # type: ignore[attr-defined]
    assert rig.prod() == "web-green"
    # DEP-3: the stability window of 5 minutes was observed (virtual time)
    assert rig.clock.now() - start >= timedelta(minutes=5)
    # DEP-4: blue scaled to 0, its target group kept and deleted 24 h later by a job
    blue = rig.deployer().ports.compute.describe_service("web-blue")
    assert blue is not None and blue.desired == 0
    assert "web-blue" in rig.cloud.target_groups
    (job,) = rig.store.jobs(status="pending")
    assert job.payload["target_group"] == "web-blue"
    assert timedelta(hours=23, minutes=59) < job.due_at - start < timedelta(hours=24, minutes=7)
    # the deployment log: every step stored with its outcome
    assert {s.phase for s in rig.store.steps_for(rec.id)} == {  # type: ignore[attr-defined]
        "prepare",
        "deploy",
        "switch",
        "cleanup",
    }


def test_green_never_healthy_stops_in_phase_2_with_traffic_on_blue_dep7(rig: Rig) -> None:
    deploy(rig, "1.0.0")
    with pytest.raises(DeploymentError) as err:
        deploy(rig, "6.6.6")
    assert err.value.exit_code == 1
    assert "did not turn healthy within 60s" in err.value.message
    assert rig.prod() == "web-blue"
    assert not [s for s in rig.cloud.switches if s[1] == "web-prod" and s[2] == "web-green"]
    green = rig.deployer().ports.compute.describe_service("web-green")
    assert green is not None and green.desired == 0  # torn down
    (failed,) = rig.store.list_deployments(status=["failed"])
    assert failed.phase == "deploy"
    assert any(n.kind == "deployment.failed" for n in rig.notices)  # DEP-7: notified


def test_smoke_check_failing_on_test_listener_stops_before_switch(rig: Rig) -> None:
    deploy(rig, "1.0.0")
    with pytest.raises(DeploymentError) as err:
        deploy(rig, "5.0.0")
    assert "smoke check" in err.value.message
    assert rig.prod() == "web-blue"
    steps = rig.store.steps_for(rig.store.list_deployments(limit=1)[0].id)
    assert steps[-1].name == "SmokeTest" and steps[-1].status == "failed"


def test_errors_after_switch_flip_back_to_blue_and_exit_3(rig: Rig) -> None:
    deploy(rig, "1.0.0")
    with pytest.raises(RolledBackError) as err:
        deploy(rig, "2.0.0")  # 20 % errors: passes the smoke check, fails observation
    assert err.value.exit_code == 3
    assert rig.prod() == "web-blue"
    (rec,) = rig.store.list_deployments(status=["rolled_back"])
    decisions = rig.store.decisions(deployment_id=rec.id)
    assert decisions and decisions[0].action == "rollback"
    assert decisions[0].evidence["error_rate"] == pytest.approx(20.0)
    blue = rig.deployer().ports.compute.describe_service("web-blue")
    assert blue is not None and blue.healthy == 4


def test_second_concurrent_deploy_gets_lock_held(rig: Rig) -> None:
    rig.store.acquire_lock(
        "staging/web", owner="alice@ci:42", reason="deploy web 1.0.0", now=rig.clock.now()
    )
    with pytest.raises(LockHeldError) as err:
        deploy(rig, "1.0.0")
    assert err.value.exit_code == 4
    assert "alice@ci:42" in str(err.value)
    assert rig.store.list_deployments() == []
    assert [e.kind for e in rig.store.events()] == ["deploy.refused"]


@pytest.mark.parametrize("version", ["1.0", "latest", "v1.2.3.4", "1.0.0-", ""])
def test_bad_version_is_refused_with_nothing_executed_dep6(rig: Rig, version: str) -> None:
    with pytest.raises(ConfigError) as err:
        deploy(rig, version)
    assert err.value.exit_code == 2
    assert "semantic version" in err.value.message
    assert rig.store.list_deployments() == []
    assert rig.cloud.task_definitions == {}


def test_deploying_the_live_version_needs_force(rig: Rig) -> None:
    deploy(rig, "1.0.0")
    with pytest.raises(ConfigError, match="already live"):
        deploy(rig, "1.0.0")
    rec = deploy(rig, "1.0.0", force=True)
    assert rec.status == "succeeded"  # type: ignore[attr-defined]


def test_rolling_update_never_drops_below_desired_healthy_iac4(rig: Rig) -> None:
    deploy(rig, "1.0.0", strategy="rolling")
    seen: list[int] = []
    compute = rig.deployer().ports.compute

    def sample(_event: object) -> None:
        svc = compute.describe_service("web-blue")
        if svc is not None:
            seen.append(svc.healthy)

    d = rig.deployer()
    d.reporter = sample
    rec = d.deploy(DeployRequest(service="web", version="1.1.0", strategy="rolling"))
    assert rec.status == "succeeded"
    assert seen and min(seen) >= 4
    assert max(len(compute.describe_service("web-blue").tasks) for _ in [0]) <= 8  # type: ignore[union-attr]
    step = next(s for s in rig.store.steps_for(rec.id) if s.name == "RollingUpdate")
    assert step.result["lowest_healthy_seen"] >= 4


def test_resume_continues_at_first_unfinished_step(rig: Rig) -> None:
    deploy(rig, "1.0.0")

    class Crash(BaseException):
        pass

    def crash_after_switch(ev: object) -> None:
        if getattr(ev, "kind", "") == "step.succeeded" and ev.data.get("step") == "SwitchListener":  # type: ignore[attr-defined]
            raise Crash

    d = rig.deployer()
    d.reporter = crash_after_switch
    with pytest.raises(Crash):
        d.deploy(DeployRequest(service="web", version="1.1.0", owner="ci@host:1"))
    (rec,) = rig.store.list_deployments(status=["running"])
    done_before = [s.name for s in rig.store.steps_for(rec.id) if s.status == "succeeded"]
    assert done_before[-1] == "SwitchListener"
    resumed = rig.deployer().resume(rec.id, owner="ops@host:2", owner_alive=lambda _o: False)
    assert resumed.status == "succeeded"
    assert rig.prod() == "web-green"
    names = [s.name for s in rig.store.steps_for(rec.id)]
    assert names.count("RegisterTaskDefinition") == 1  # nothing re-run before the crash point
    assert rig.store.get_lock("staging/web") is None
