"""The recovery runner's journal and resume (DR-4: a restore killed halfway continues at its
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
from deployops.engine.restore import (
    RecoveryContext,
    RecoveryRunner,
    plan_db_restore,
)
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


def _runner(db: FakeDatabase, tmp_path: Path, locks: list[str]) -> RecoveryRunner:
    return RecoveryRunner(
        ctx=RecoveryContext(clock=SystemClock(), database=db),
        journal_dir=tmp_path / "ops",
        acquire=lambda p: locks.append(f"+{p.service}"),
        release=lambda p: locks.append(f"-{p.service}"),
    )


def test_dr4_a_failed_restore_resumes_at_its_first_unfinished_step(tmp_path: Path) -> None:
    db = FakeDatabase()
    db.fail_restore_once = True
    locks: list[str] = []
    plan = plan_db_restore(
        operation_id="rst-1",
        service="web",
        target=RestoreTarget(),
        instance_id="rst-1",
        repoint=False,
    )
    with pytest.raises(BackupError, match="unreachable"):
        _runner(db, tmp_path, locks).run(plan)
    assert db.primary().id == "p"  # nothing was repointed
    assert locks == ["+web", "-web"]  # the lock is released on failure
    doc = _runner(db, tmp_path, locks).resume("rst-1")  # a new process: from the journal
    assert doc["status"] == "succeeded"
    # CheckRestorable ran once; the restore was retried; verify ran after it
    assert db.calls == ["archived_until", "restore:rst-1", "restore:rst-1", "inspect:rst-1"]
    again = _runner(db, tmp_path, locks).resume("rst-1")
    assert again["status"] == "succeeded"
    assert db.calls.count("restore:rst-1") == 2  # a finished operation is not redone


def test_dr2_a_time_outside_the_window_is_refused_before_any_restore(tmp_path: Path) -> None:
    db = FakeDatabase()
    plan = plan_db_restore(
        operation_id="rst-2",
        service="web",
        target=RestoreTarget(to_time=db.now - timedelta(days=3)),
        instance_id="rst-2",
        repoint=True,
    )
    with pytest.raises(BackupError, match="outside the retention"):
        _runner(db, tmp_path, []).run(plan)
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


def test_dr4_the_restore_plan_runs_on_the_generic_operation_runner(tmp_path: Path) -> None:
    """Plugging restores into the runner is registration: the same steps and handlers, the
    lock on the service, intent and outcome per step in the store."""
    from deployops.domain.names import lock_key
    from deployops.drivers.memory import MemoryCompute, MemoryProber
    from deployops.engine.operation import Env, NewOperation, Ports
    from deployops.engine.restore import RESTORE_KIND, as_runner_plan, runner_handlers
    from deployops.engine.runner import Runner
    from deployops.ports.recovery import Database
    from tests.support.memory_rig import make_rig

    rig = make_rig(tmp_path)
    db = FakeDatabase()
    runner = Runner(
        env=Env(
            ports=Ports(
                compute=MemoryCompute(cloud=rig.cloud),
                traffic=rig.traffic,
                metrics=rig.metrics,
                prober=MemoryProber(cloud=rig.cloud),
                extra={Database: db},
            ),
            store=rig.store,
            clock=rig.clock,
        ),
        handlers=runner_handlers(),
    )
    plan = plan_db_restore(
        operation_id="rst-x",
        service="web",
        target=RestoreTarget(),
        instance_id="rst-x",
        repoint=False,
    )
    op = runner.start(
        NewOperation(
            kind=RESTORE_KIND,
            environment="staging",
            target="web",
            owner="ops@host:1",
            plan=as_runner_plan(plan),
        )
    )
    assert op.status == "succeeded"
    assert op.id.startswith("rst-")
    steps = rig.store.steps_for(op.id)
    assert [(s.name, s.status) for s in steps] == [
        ("CheckRestorable", "succeeded"),
        ("RestoreDatabase", "succeeded"),
        ("VerifyDatabase", "succeeded"),
    ]
    assert steps[1].result["port"] == 6000
    assert rig.store.get_lock(lock_key("staging", "web")) is None
