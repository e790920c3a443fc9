"""The watch after the switch (RB-1 after the stability window, RB-2's flow) on the in-memory
platform with the guide's durations on a virtual clock: a release that degrades after its
window is rolled back by redeploying the previous version, with the decision, notices and
incident report of a rollback inside the window; a healthy release's watch ends clean; a newer
deployment supersedes it; a held lock makes it wait; a restart mid-rollback neither loses nor
repeats the rollback.

What the in-memory platform cannot show: real processes and HAProxy (see
tests/e2e/test_watch_after_e2e.py for those)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deployops.domain.names import lock_key
from deployops.drivers.memory import MemoryCompute
from deployops.engine.controller import Controller
from deployops.engine.lease import LeaderLease
from deployops.engine.watch_after import AfterSwitchWatch, watch_of, watch_view
from deployops.store import DeploymentRecord, OperationRecord
from tests.support.memory_rig import Rig
from tests.support.rules_rig import deploy, make_rules_rig, rules_deployer

WORKER = "ctl@here:1"


def make_watch(rig: Rig, **kw: Any) -> AfterSwitchWatch:
    # inline by default: the virtual clock moves with the rollback's waits
    kw.setdefault("spawn", lambda fn: fn())
    return AfterSwitchWatch(
        store=rig.store,
        clock=rig.clock,
        environment="staging",
        worker=WORKER,
        deployer=lambda: rules_deployer(rig),
        **kw,
    )


def op(rig: Rig, dep_id: str) -> OperationRecord:
    found = rig.store.get_operation(dep_id)
    assert found is not None
    return found


def run_until(
    rig: Rig,
    watch: AfterSwitchWatch,
    done: Callable[[], bool],
    *,
    limit_s: float,
    step_s: float = 5,
) -> float:
    """Tick the watch every ``step_s`` virtual seconds until ``done``; returns the seconds."""
    t0 = rig.clock.monotonic()
    while not done():
        assert rig.clock.monotonic() - t0 < limit_s, "not reached in time"
        rig.clock.advance(step_s)
        watch.tick()
    return rig.clock.monotonic() - t0


def state(rig: Rig, dep_id: str) -> str:
    return str(watch_of(op(rig, dep_id)).get("state"))


def rollbacks_of(rig: Rig, dep_id: str) -> list[DeploymentRecord]:
    return [d for d in rig.store.list_deployments(limit=100) if d.reverts == dep_id]


def test_rb1_release_degrading_after_its_window_is_rolled_back_by_the_watch(
    tmp_path: Path,
) -> None:
    """RB-1 after the stability window: 1.3.0 passes its 5 minutes, and 2 minutes later fails
    20 % of its requests. The watch decides when the error-rate rule's 5-minute window is
    satisfied, records the decision with its evidence, and redeploys 1.0.0 (blue was scaled to
    0) through the rollback's plan; the deployment ends rolled_back with the incident report
    and the same notices as a rollback inside the window."""
    rig = make_rules_rig(tmp_path)
    deploy(rig, "1.0.0")
    live = deploy(rig, "1.3.0")  # degrades 7 minutes after its tasks started
    assert rig.prod() == "web-green"
    assert rig.cloud.services["web-blue"].desired == 0  # blue scaled to 0 after the window
    w = watch_of(op(rig, live.id))
    assert w["state"] == "watching"
    # The default: until the old target group is deleted (the DEP-4 job's due time).
    (job,) = rig.store.jobs(status="pending")
    assert datetime.fromisoformat(w["until"]) == job.due_at
    assert w["period_s"] == pytest.approx(86400, abs=1)

    started = min(t.started for t in rig.cloud.services["web-green"].tasks)
    watch = make_watch(rig)
    while rig.clock.monotonic() < started + 420:  # healthy until 2 minutes after the window
        rig.clock.advance(5)
        watch.tick()
        assert state(rig, live.id) == "watching"
    assert rig.store.decisions(deployment_id=live.id) == []

    degraded_at = rig.clock.now()
    run_until(rig, watch, lambda: state(rig, live.id) != "watching", limit_s=900)

    # Decided when the 5-minute window was full of breaching periods.
    (decision,) = rig.store.decisions(deployment_id=live.id)
    assert (decision.rule, decision.action) == ("error-rate", "rollback")
    assert decision.evidence["caused_by_release"] is True
    assert (decision.ts - degraded_at).total_seconds() == pytest.approx(300, abs=70)
    # One rollback, a redeploy of the previous version through the rollback's plan.
    (rb,) = rollbacks_of(rig, live.id)
    assert (rb.kind, rb.status, rb.version, rb.strategy) == (
        "rollback",
        "succeeded",
        "1.0.0",
        "redeploy",
    )
    steps = [s.name for s in rig.store.steps_for(rb.id)]
    assert steps[:3] == ["UseTaskDefinition", "CreateTargetGroup", "StartService"]
    assert "WaitHealthy" in steps and "SwitchListener" in steps
    assert rig.prod() == "web-blue"
    blue = rig.cloud.services["web-blue"]
    assert blue.desired == 4
    assert rig.cloud.spec(blue.task_definition).version == "1.0.0"
    rec = rig.store.get_deployment(live.id)
    assert rec is not None and rec.status == "rolled_back"
    assert "during the watch after the switch" in rec.error
    # The same record as inside the window: decision notice, rollback notice, incident report.
    kinds = [n.kind for n in rig.notices]
    assert "decision" in kinds
    # the rollback notice, then the previous version's "deployed" of the rollback itself
    assert kinds[-2:] == ["deployment.rolled_back", "deployment.succeeded"]
    assert rig.notices[-2].severity == "critical"
    report = tmp_path / ".deployops" / "reports" / f"{live.id}.md"
    text = report.read_text()
    for section in ("## Summary", "## Impact", "## Timeline", "## Evidence", "## Verification"):
        assert section in text
    assert "error-rate" in text and rb.id in text
    assert "web-prod switched web-green → web-blue" in text
    (stored,) = rig.store.events(deployment_id=live.id, kind="incident.report")
    assert stored.data["markdown"] == text
    view = watch_view(op(rig, live.id), now=rig.clock.now())
    assert view["state"] == "rolled_back" and not view["under_watch"]
    assert view["rollback_id"] == rb.id
    assert "error-rate" in view["summary"] and rb.id in view["summary"]
    # It never rolls back twice: more ticks change nothing.
    for _ in range(20):
        rig.clock.advance(10)
        watch.tick()
    assert len(rollbacks_of(rig, live.id)) == 1
    assert watch.watched() == []  # the rollback (1.0.0 again) is not watched itself


def test_rb1_healthy_release_watch_ends_clean_at_the_end_of_its_period(tmp_path: Path) -> None:
    """``rollback.watch_after_switch: 10m``: the watch ends clean 10 minutes after the deploy,
    saying which rules it judged; nothing was rolled back."""
    rig = make_rules_rig(tmp_path, rollback={"watch_after_switch": "10m"})
    deploy(rig, "1.0.0")
    live = deploy(rig, "1.1.0")
    w = watch_of(op(rig, live.id))
    assert w["period_s"] == 600
    watch = make_watch(rig)
    took = run_until(rig, watch, lambda: state(rig, live.id) != "watching", limit_s=900)
    assert took == pytest.approx(600, abs=15)
    ended = watch_of(op(rig, live.id))
    assert ended["state"] == "clean"
    assert ended["reason"] == (
        "no rule called for a rollback for 10m (rollback.watch_after_switch); judged 5 of 5 "
        "rules: error-rate, p99-latency, memory, cpu, health-check-failures"
    )
    # the windows it judged are kept, as every observation's
    assert rig.store.measurements(deployment_id=live.id)
    assert rollbacks_of(rig, live.id) == []
    assert rig.prod() == "web-green"
    view = watch_view(op(rig, live.id), now=rig.clock.now())
    assert view["summary"].startswith("ended clean at")


def test_rb1_watch_off_with_zero_and_for_a_first_deployment(tmp_path: Path) -> None:
    rig = make_rules_rig(tmp_path, rollback={"watch_after_switch": 0})
    first = deploy(rig, "1.0.0")
    assert watch_of(op(rig, first.id))["state"] == "off"
    assert "first deployment" in watch_of(op(rig, first.id))["reason"]
    second = deploy(rig, "1.1.0")
    assert watch_of(op(rig, second.id))["reason"] == "rollback.watch_after_switch is 0"
    assert make_watch(rig).watched() == []


def test_rb1_newer_deployment_supersedes_the_watch(tmp_path: Path) -> None:
    rig = make_rules_rig(tmp_path)
    deploy(rig, "1.0.0")
    older = deploy(rig, "1.1.0")
    assert state(rig, older.id) == "watching"
    newer = deploy(rig, "1.2.0")
    w = watch_of(op(rig, older.id))
    assert (w["state"], w["superseded_by"]) == ("superseded", newer.id)
    assert state(rig, newer.id) == "watching"
    watch = make_watch(rig)
    assert [o.id for o in watch.watched()] == [newer.id]
    view = watch_view(op(rig, older.id), now=rig.clock.now())
    assert view["summary"] == f"superseded by {newer.id} (deploy of 1.2.0)"


def test_rb1_watch_waits_while_the_service_is_locked(tmp_path: Path) -> None:
    """A breach while another operation holds the service's lock: the watch says it waits,
    and rolls back once (only once) the lock is free."""
    rig = make_rules_rig(tmp_path)
    deploy(rig, "1.0.0")
    live = deploy(rig, "1.1.0")
    rig.cloud.service_faults["web-green"] = {"FAULT_ERROR_RATE": "0.2"}
    key = lock_key("staging", "web")
    rig.store.acquire_lock(key, owner="alice@box:7", reason="deploy web 1.2.0", now=rig.clock.now())
    watch = make_watch(rig)
    for _ in range(120):
        rig.clock.advance(5)
        watch.tick()
    (waiting,) = rig.store.events(deployment_id=live.id, kind="watch.waiting")
    assert "locked by alice@box:7: deploy web 1.2.0" in waiting.message
    assert rig.store.decisions(deployment_id=live.id) == []
    assert rollbacks_of(rig, live.id) == []
    rig.store.release_lock(key, owner="alice@box:7")
    run_until(rig, watch, lambda: state(rig, live.id) == "rolled_back", limit_s=900)
    assert len(rollbacks_of(rig, live.id)) == 1
    assert rig.prod() == "web-blue"


def test_rb1_restart_after_the_decision_starts_the_rollback_once(tmp_path: Path) -> None:
    """A controller that died right after storing the decision (no rollback begun): the next
    one starts the rollback, once."""
    rig = make_rules_rig(tmp_path)
    deploy(rig, "1.0.0")
    live = deploy(rig, "1.1.0")
    rig.cloud.service_faults["web-green"] = {"FAULT_ERROR_RATE": "0.2"}

    def crash(_fn: Callable[[], None]) -> None:
        raise SystemExit("killed")  # the process dies where the rollback would begin

    dying = make_watch(rig, spawn=crash)
    with pytest.raises(SystemExit):
        run_until(rig, dying, lambda: False, limit_s=900)
    assert state(rig, live.id) == "rolling_back"
    assert rollbacks_of(rig, live.id) == []

    fresh = make_watch(rig)
    fresh.tick()
    assert state(rig, live.id) == "rolled_back"
    assert len(rollbacks_of(rig, live.id)) == 1
    assert len(rig.store.decisions(deployment_id=live.id)) == 1  # decided once
    for _ in range(5):
        rig.clock.advance(10)
        fresh.tick()
    assert len(rollbacks_of(rig, live.id)) == 1


def test_rb1_interrupted_rollback_is_finished_by_resume(tmp_path: Path) -> None:
    """The watch's rollback killed mid-way: the watch does not start another while it is
    interrupted; ``resume`` finishes it and its success records and reports the rollback."""
    rig = make_rules_rig(tmp_path)
    deploy(rig, "1.0.0")
    live = deploy(rig, "1.1.0")
    rig.cloud.service_faults["web-green"] = {"FAULT_ERROR_RATE": "0.2"}

    class Killed(BaseException):
        pass

    def crash_point(kind: str, seq: int, where: str) -> None:
        if (kind, seq, where) == ("rollback", 4, "before-act"):
            raise Killed

    def dying_deployer() -> Any:
        d = rules_deployer(rig)
        from dataclasses import replace

        d.env = replace(d.env, crash_point=crash_point)
        d.runner.env = d.env
        return d

    dying = AfterSwitchWatch(
        store=rig.store,
        clock=rig.clock,
        environment="staging",
        worker=WORKER,
        deployer=dying_deployer,
        spawn=lambda fn: fn(),
    )
    with pytest.raises(Killed):
        run_until(rig, dying, lambda: False, limit_s=900)
    (rb,) = rollbacks_of(rig, live.id)
    assert rb.status == "running"
    # The lock of the dead owner is still there: a new watch waits, it does not start again.
    fresh = make_watch(rig)
    for _ in range(5):
        rig.clock.advance(10)
        fresh.tick()
    assert len(rollbacks_of(rig, live.id)) == 1
    assert state(rig, live.id) == "rolling_back"
    view = watch_view(op(rig, live.id), now=rig.clock.now())
    assert view["under_watch"] and view["summary"].startswith("rolling back since")

    rules_deployer(rig).resume(rb.id, owner="ops@box:9", owner_alive=lambda _o: False)
    assert state(rig, live.id) == "rolled_back"
    (done,) = rollbacks_of(rig, live.id)
    assert done.status == "succeeded"
    assert rig.prod() == "web-blue"
    assert (tmp_path / ".deployops" / "reports" / f"{live.id}.md").exists()
    fresh.tick()
    assert len(rollbacks_of(rig, live.id)) == 1


def test_rb1_watch_until_is_shown_for_a_watched_deployment(tmp_path: Path) -> None:
    rig = make_rules_rig(tmp_path, rollback={"watch_after_switch": "2h"})
    deploy(rig, "1.0.0")
    live = deploy(rig, "1.1.0")
    view = watch_view(op(rig, live.id), now=rig.clock.now())
    assert view["under_watch"] is True
    until = datetime.fromisoformat(view["until"])
    assert until - rig.clock.now() == timedelta(hours=2)
    assert view["summary"].startswith(f"under watch until {view['until']}")
    # A period long over with no controller to close it is said so.
    late = watch_view(op(rig, live.id), now=rig.clock.now() + timedelta(hours=3))
    assert "no controller has closed it" in late["summary"]


def test_rb1_only_the_acting_controller_watches(tmp_path: Path) -> None:
    """Two controllers share the store: the standby's ticks judge nothing, the lease holder's
    watch rolls the breach back, once."""
    rig = make_rules_rig(tmp_path, rollback={"watch_after_switch": "1h"})
    deploy(rig, "1.0.0")
    live = deploy(rig, "1.3.0")

    def controller(name: str) -> Controller:
        return Controller(
            store=rig.store,
            clock=rig.clock,
            environment="staging",
            traffic=rig.traffic,
            compute=MemoryCompute(cloud=rig.cloud),
            worker=name,
            watch=make_watch(rig),
            lease=LeaderLease(
                store=rig.store, name="controller:staging", holder=name, clock=rig.clock
            ),
        )

    a, b = controller("a@here:1"), controller("b@here:2")
    a.start()
    b.start()
    assert (a.leading, b.leading) == (True, False)
    for _ in range(200):
        rig.clock.advance(5)
        assert a.lease is not None and a.lease.hold()  # the holder renews (its keep thread)
        b.tick()
    assert b.stats["watch"].runs == 0
    assert rig.store.decisions(deployment_id=live.id) == []
    for _ in range(200):
        rig.clock.advance(5)
        a.tick()
        if state(rig, live.id) != "watching":
            break
    assert a.stats["watch"].runs > 0
    assert state(rig, live.id) == "rolled_back"
    assert len(rollbacks_of(rig, live.id)) == 1
    assert b.stats["watch"].runs == 0


def test_rb1_a_rollback_that_fails_is_notified_and_never_tried_again(tmp_path: Path) -> None:
    """The previous version does not turn healthy when the watch redeploys it: production
    stays where it was, the watch ends ``rollback_failed`` with a critical notice naming the
    manual rollback, and it does not try again."""
    rig = make_rules_rig(tmp_path)
    deploy(rig, "1.0.0")
    live = deploy(rig, "1.3.0")
    rig.cloud.service_faults["web-blue"] = {"FAULT_HEALTH_FAIL": "1"}
    watch = make_watch(rig)
    run_until(
        rig, watch, lambda: state(rig, live.id) not in ("watching", "rolling_back"), limit_s=1200
    )
    w = watch_of(op(rig, live.id))
    assert w["state"] == "rollback_failed", w
    (rb,) = rollbacks_of(rig, live.id)
    assert rb.status == "failed"
    assert rig.prod() == "web-green"
    assert "production is on web-green" in w["reason"]
    notice = rig.notices[-1]
    assert (notice.kind, notice.severity) == ("watch.rollback_failed", "critical")
    assert f"deployops rollback {live.id}" in notice.text
    for _ in range(30):
        rig.clock.advance(10)
        watch.tick()
    assert len(rollbacks_of(rig, live.id)) == 1
    view = watch_view(op(rig, live.id), now=rig.clock.now())
    assert view["under_watch"] is False and view["summary"].startswith("rollback_failed:")


def test_rb1_a_rollback_across_an_irreversible_migration_is_left_to_a_person(
    tmp_path: Path,
) -> None:
    """RB-3's database check blocks the automatic rollback as it blocks the command: the watch
    records the decision, notifies critically, changes nothing."""
    rig = make_rules_rig(
        tmp_path,
        migrations={"1.3.0": {"irreversible": True, "description": "drops the old column"}},
    )
    deploy(rig, "1.0.0")
    live = deploy(rig, "1.3.0")
    watch = make_watch(rig)
    run_until(rig, watch, lambda: state(rig, live.id) != "watching", limit_s=1200)
    w = watch_of(op(rig, live.id))
    assert w["state"] == "blocked", w
    assert "irreversible migration" in w["reason"]
    assert rollbacks_of(rig, live.id) == []
    assert rig.prod() == "web-green"
    (decision,) = rig.store.decisions(deployment_id=live.id)
    assert decision.action == "rollback"
    assert rig.notices[-1].kind == "watch.blocked"
