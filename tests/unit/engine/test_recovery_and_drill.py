"""Restores on the one operation runner: resume (DR-4: a restore killed halfway continues at its
first unfinished step) and the drill's RTO/RPO measurement (DR-7), on in-memory ports."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from deployops.clock import SystemClock
from deployops.domain.backup import (
    BackupPoint,
    BackupTarget,
    DbInstance,
    DbRole,
    DrillScenario,
    RestoreTarget,
)
from deployops.engine.drill import render_markdown, run_drill
from deployops.engine.restore import plan_db_restore
from deployops.errors import BackupError

T0 = datetime(2026, 3, 1, tzinfo=UTC)


class FakeDatabase:
    name: ClassVar[str] = "fake"
    capabilities: ClassVar[frozenset[str]] = frozenset({"pitr"})

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail_restore_once = False
        self.now = datetime.now(UTC)
        self._instances = {"p": DbInstance("p", "127.0.0.1", 5432, DbRole.PRIMARY)}
        self._primary = "p"

    def primary(self) -> DbInstance:
        return self._instances[self._primary]

    def instances(self) -> Sequence[DbInstance]:
        return list(self._instances.values())

    def backup(self, kind: str) -> BackupPoint:
        raise NotImplementedError

    def backups(self) -> Sequence[BackupPoint]:
        at = self.now - timedelta(hours=1)
        return [BackupPoint(BackupTarget.DATABASE, "b1", "full", at, at)]

    def archived_until(self) -> datetime | None:
        self.calls.append("archived_until")
        return self.now

    def earliest_point(self) -> datetime | None:
        return self.backups()[0].finished_at

    def restore(self, instance_id: str, target: RestoreTarget, *, scratch: bool) -> DbInstance:
        self.calls.append(f"restore:{instance_id}")
        if self.fail_restore_once:
            self.fail_restore_once = False
            raise BackupError("repository unreachable")
        self._instances[instance_id] = DbInstance(instance_id, "127.0.0.1", 6000, DbRole.PRIMARY)
        return self._instances[instance_id]

    def promote(self, instance_id: str) -> DbInstance:
        self.calls.append(f"promote:{instance_id}")
        self._primary = instance_id
        return self._instances[instance_id]

    def start_standby(self, instance_id: str) -> DbInstance:
        raise NotImplementedError

    def destroy(self, instance_id: str) -> None:
        self._instances.pop(instance_id, None)

    def verify(self) -> list[str]:
        return []

    def inspect(self, instance_id: str) -> dict[str, Any]:
        self.calls.append(f"inspect:{instance_id}")
        return {"accepting_writes": True, "tables": 1}


class Killed(BaseException):
    """Stands in for kill -9 in the middle of a step (nothing after it runs)."""


def _runner(rig: Any, db: FakeDatabase, extra: dict[type[Any], object] | None = None) -> Any:
    from deployops.drivers.memory import MemoryCompute, MemoryProber
    from deployops.engine.operation import Env, Ports
    from deployops.engine.restore import HANDLERS
    from deployops.engine.runner import Runner
    from deployops.ports.recovery import Database

    return Runner(
        env=Env(
            ports=Ports(
                compute=MemoryCompute(cloud=rig.cloud),
                traffic=rig.traffic,
                metrics=rig.metrics,
                prober=MemoryProber(cloud=rig.cloud),
                extra={Database: db, **(extra or {})},
            ),
            store=rig.store,
            clock=rig.clock,
        ),
        handlers=HANDLERS,
    )


def _start(runner: Any, plan: Any, op_id: str = "rst-1") -> Any:
    from deployops.engine.operation import NewOperation
    from deployops.engine.restore import RESTORE_KIND

    return runner.start(
        NewOperation(
            kind=RESTORE_KIND,
            environment="staging",
            target="web",
            owner="ops@host:1",
            plan=plan,
            operation_id=op_id,
        )
    )


def test_dr4_a_restore_killed_halfway_resumes_at_its_first_unfinished_step(
    tmp_path: Path,
) -> None:
    """On the one runner: the finished step is not redone, the interrupted one runs again,
    the dead owner's lock is taken over and released; the primary is never repointed by a
    --no-repoint restore."""
    from deployops.domain.names import lock_key
    from deployops.engine.restore import RESTORE_KIND
    from tests.support.memory_rig import make_rig

    rig = make_rig(tmp_path)
    db = FakeDatabase()
    real_restore = db.restore

    def killed(*_a: Any, **_k: Any) -> Any:
        db.calls.append("restore:killed")
        raise Killed

    db.restore = killed  # type: ignore[method-assign]
    plan = plan_db_restore(
        service="web", target=RestoreTarget(), instance_id="rst-1", repoint=False
    )
    with pytest.raises(Killed):
        _start(_runner(rig, db), plan)
    op = rig.store.get_operation("rst-1")
    assert op is not None and op.status == "running"
    # kill -9 leaves the lock behind with its dead owner
    rig.store.acquire_lock(
        lock_key("staging", "web"), owner="ops@host:1", reason="x", now=rig.clock.now()
    )
    db.restore = real_restore  # type: ignore[method-assign]
    done = _runner(rig, db).resume(
        "rst-1", kinds={"restore": RESTORE_KIND}, owner="ops@host:2", owner_alive=lambda _o: False
    )
    assert done.status == "succeeded"
    assert db.calls == ["archived_until", "restore:killed", "restore:rst-1", "inspect:rst-1"]
    assert db.primary().id == "p"
    assert rig.store.get_lock(lock_key("staging", "web")) is None
    steps = rig.store.steps_for("rst-1")
    assert [(s.name, s.status) for s in steps] == [
        ("CheckRestorable", "succeeded"),
        ("RestoreDatabase", "succeeded"),
        ("VerifyDatabase", "succeeded"),
    ]


def test_dr4_a_failed_restore_stops_releases_the_lock_and_leaves_the_primary(
    tmp_path: Path,
) -> None:
    from deployops.domain.names import lock_key
    from deployops.errors import DeploymentError
    from tests.support.memory_rig import make_rig

    rig = make_rig(tmp_path)
    db = FakeDatabase()
    db.fail_restore_once = True
    plan = plan_db_restore(service="web", target=RestoreTarget(), instance_id="rst-1", repoint=True)
    with pytest.raises(DeploymentError, match="failed at RestoreDatabase: repository unreachable"):
        _start(_runner(rig, db), plan)
    assert db.primary().id == "p"  # nothing was repointed
    assert rig.store.get_lock(lock_key("staging", "web")) is None
    op = rig.store.get_operation("rst-1")
    assert op is not None and op.status == "failed"


def test_dr2_a_time_outside_the_window_is_refused_before_any_restore(tmp_path: Path) -> None:
    from deployops.errors import DeploymentError
    from tests.support.memory_rig import make_rig

    rig = make_rig(tmp_path)
    db = FakeDatabase()
    db.now = rig.clock.now()
    plan = plan_db_restore(
        service="web",
        target=RestoreTarget(to_time=db.now - timedelta(days=3)),
        instance_id="rst-2",
        repoint=True,
    )
    with pytest.raises(DeploymentError, match="outside the retention"):
        _start(_runner(rig, db), plan, "rst-2")
    assert not [c for c in db.calls if c.startswith("restore")]


class FakeApp:
    """The application's items: durable rows survive the failure, the rest is lost."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, datetime]] = []
        self.durable = 0
        self.up = True
        self.lock = threading.Lock()

    def write(self, body: str) -> datetime | None:
        with self.lock:
            if not self.up:
                return None
            at = datetime.now(UTC)
            self.rows.append((body, at))
            return at

    def present(self, prefix: str) -> list[tuple[str, datetime]]:
        with self.lock:
            return [r for r in self.rows if r[0].startswith(prefix)]


def test_dr7_drill_measures_rto_and_rpo_from_the_markers() -> None:
    app = FakeApp()
    sent: list[str] = []

    def durable() -> None:
        with app.lock:
            app.durable = len(app.rows)

    def inject() -> dict[str, Any]:
        with app.lock:
            app.up = False
        return {"killed": "db"}

    def recover(_at: datetime) -> dict[str, Any]:
        SystemClock().sleep(0.3)
        with app.lock:
            app.rows = app.rows[: app.durable]  # what was not archived is lost
            app.up = True
        return {"restored": True}

    def notify(sev: str, title: str, text: str) -> list[str]:
        sent.append(title)
        return ["team"]

    report = run_drill(
        drill_id="drl-t",
        scenario=DrillScenario.DB_LOSS,
        environment="development",
        clock=SystemClock(),
        markers=app,
        inject=inject,
        recover=recover,
        notify=notify,
        rto_target_s=60,
        rpo_target_s=5,
        marker_interval_s=0.05,
        make_durable=durable,
    )
    o = report.outcome
    assert o.passed, o.problems
    assert o.rto_s is not None and 0.3 <= o.rto_s < 5
    assert o.rpo_s is not None and 0 < o.rpo_s < 5  # the markers after the durable point
    assert report.last_present_after is not None
    assert report.last_committed_before_failure is not None
    assert report.last_present_after < report.last_committed_before_failure
    assert sent == ["Drill db-loss: failure injected", "Drill db-loss: finished"]
    md = render_markdown(report)
    assert "| RTO (failure to serving) |" in md and "PASSED" in md


def test_dr7_a_drill_without_notifications_or_recovery_fails_with_its_reasons() -> None:
    app = FakeApp()

    def inject() -> dict[str, Any]:
        app.up = False
        return {}

    def recover(_at: datetime) -> dict[str, Any]:
        raise BackupError("no backup to restore")

    report = run_drill(
        drill_id="drl-u",
        scenario=DrillScenario.DB_LOSS,
        environment="development",
        clock=SystemClock(),
        markers=app,
        inject=inject,
        recover=recover,
        notify=lambda *_a: [],
        rto_target_s=60,
        rpo_target_s=5,
        marker_interval_s=0.05,
        wait_serving_s=0.5,
    )
    o = report.outcome
    assert not o.passed
    joined = " | ".join(o.problems)
    assert "the recovery failed: no backup to restore" in joined
    assert "not serving" in joined
    assert "no notification was delivered" in joined


def test_dr4_a_restore_survives_the_next_deploy(tmp_path: Path) -> None:
    """Restore -> deploy: the repoint rolls the live replicas onto the restored database and
    keeps its endpoint as environment state; the next deploy's new replicas use it, not the
    DB_HOST / DB_PORT of deployops.yaml."""
    from deployops.drivers.memory import MemoryCompute
    from deployops.engine.deploy import DeployRequest
    from deployops.engine.restore import StoredDatabaseEndpoints
    from deployops.ports.recovery import DatabaseEndpoints
    from tests.support.memory_rig import make_rig, write_project

    rig = make_rig(tmp_path)
    rig.project = write_project(tmp_path, environment={"DB_HOST": "10.0.0.1", "DB_PORT": "5432"})
    endpoints = StoredDatabaseEndpoints(store=rig.store, environment="staging", clock=rig.clock)
    deployer = rig.deployer(extra_ports={DatabaseEndpoints: endpoints})
    deployer.deploy(DeployRequest(service="web", version="1.0.0"))

    def live_env() -> dict[str, str]:
        compute = MemoryCompute(cloud=rig.cloud)
        svc = compute.describe_service(rig.prod())
        assert svc is not None
        return dict(compute.describe_task_definition(svc.task_definition).spec.environment)

    assert live_env()["DB_HOST"] == "10.0.0.1"
    db = FakeDatabase()
    plan = plan_db_restore(service="web", target=RestoreTarget(), instance_id="rst-3", repoint=True)
    op = _start(_runner(rig, db, extra={DatabaseEndpoints: endpoints}), plan, "rst-3")
    assert op.status == "succeeded"
    assert (live_env()["DB_HOST"], live_env()["DB_PORT"]) == ("127.0.0.1", "6000")
    stored = rig.store.environment_state("staging", "database/web")
    assert stored is not None and stored["source"] == "rst-3"

    rec = deployer.deploy(DeployRequest(service="web", version="1.1.0"))
    assert rec.status == "succeeded"
    env = live_env()
    assert env["APP_VERSION"] == "1.1.0"
    assert (env["DB_HOST"], env["DB_PORT"]) == ("127.0.0.1", "6000")


def test_the_history_lists_every_recovery_kind_resume_knows() -> None:
    from deployops.cli._recovery import recovery_kinds
    from deployops.cli.deployments_cmd import HISTORY_KINDS
    from deployops.store.records import DEPLOYMENT_KINDS

    assert set(HISTORY_KINDS) == {*DEPLOYMENT_KINDS, *recovery_kinds()}


def _drill_runner(rig: Any, db: FakeDatabase, app: FakeApp, tmp_path: Path) -> Any:
    from deployops.engine.drill import DRILL_HANDLERS, DrillSite
    from deployops.engine.restore import HANDLERS

    runner = _runner(rig, db)
    runner.handlers = HANDLERS.merged(DRILL_HANDLERS)
    site = DrillSite(
        markers=app,
        notify=lambda _s, _t, _x: ["team"],
        inject=lambda _sc: (setattr(app, "up", False), {"killed": "p"})[1],
        prepare=lambda _sc: {},
        make_durable=lambda: None,
        reports_dir=tmp_path / "drills",
        marker_interval_s=0.05,
    )
    from dataclasses import replace

    runner.env = replace(
        runner.env,
        clock=SystemClock(),
        ports=replace(runner.env.ports, extra={**runner.env.ports.extra, DrillSite: site}),
    )
    return runner


def test_dr7_a_drill_is_an_operation_and_a_failed_recovery_is_still_reported(
    tmp_path: Path,
) -> None:
    """The drill on the one runner: prepare, inject, the restore's own steps, measure; a
    recovery that fails is measured and reported (the report says why), then the operation
    fails; the lock is released."""
    import json

    from deployops.domain.names import lock_key
    from deployops.engine.drill import DRILL_KIND, plan_drill
    from deployops.engine.operation import NewOperation
    from deployops.engine.restore import db_restore_steps
    from deployops.errors import DeploymentError
    from tests.support.memory_rig import make_rig

    rig = make_rig(tmp_path)
    db = FakeDatabase()
    db.fail_restore_once = True
    app = FakeApp()
    plan = plan_drill(
        drill_id="drl-1",
        scenario=DrillScenario.DB_LOSS,
        service="web",
        recovery=db_restore_steps(
            service="web", target=RestoreTarget(), instance_id="drl-1-restore", repoint=False
        ),
        wait_s=0.5,
        rto_target_s=60,
        rpo_target_s=5,
        runbook="docs/runbooks/drill-db-loss.md",
    )
    new = NewOperation(
        kind=DRILL_KIND,
        environment="staging",
        target="web",
        owner="ops@host:1",
        plan=plan,
        operation_id="drl-1",
    )
    with pytest.raises(DeploymentError, match="failed at RestoreDatabase"):
        _drill_runner(rig, db, app, tmp_path).start(new)
    op = rig.store.get_operation("drl-1")
    assert op is not None and op.status == "failed"
    report = json.loads(Path(op.detail["report_json"]).read_text())
    assert not report["outcome"]["passed"]
    assert any(
        "the recovery failed: repository unreachable" in p for p in report["outcome"]["problems"]
    )
    assert rig.store.get_lock(lock_key("staging", "web")) is None

    # the same drill again, the restore now works: measured and passed
    app.up = True
    ok = _drill_runner(rig, db, app, tmp_path).start(
        NewOperation(
            kind=DRILL_KIND,
            environment="staging",
            target="web",
            owner="ops@host:1",
            plan=plan,
            operation_id="drl-2",
        )
    )
    assert ok.status == "succeeded"
    steps = [s.name for s in rig.store.steps_for("drl-2")]
    assert steps == [
        "PrepareDrill",
        "InjectFailure",
        "CheckRestorable",
        "RestoreDatabase",
        "VerifyDatabase",
        "MeasureDrill",
    ]
