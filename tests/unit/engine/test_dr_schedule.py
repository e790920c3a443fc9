"""The controller's disaster-recovery loops on the virtual clock: the backup freshness alarm
through the notification routes (DR-1), the scheduled test restore (DR-1), the quarterly
drills announced or run when due (DR-7); ``due()`` is what ``dr status`` shows."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from deployops.config.backups import BackupsConfig
from deployops.domain.backup import BackupTarget, DrillScenario
from deployops.drivers.memory import MemoryCompute
from deployops.engine.controller import Controller
from deployops.engine.dr_schedule import DrSchedule
from deployops.engine.events import Notice
from deployops.store import OperationRecord
from tests.support.memory_rig import Rig, make_rig


class World:
    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.newest: dict[BackupTarget, datetime | None] = {
            BackupTarget.DATABASE: rig.clock.now(),
            BackupTarget.APP_DATA: rig.clock.now(),
        }
        self.notices: list[Notice] = []
        self.test_restores = 0
        self.test_restore_ok = True
        self.drills: list[DrillScenario] = []

    def schedule(self, *, run_drills: bool = False) -> DrSchedule:
        def test_restore() -> dict[str, Any]:
            self.test_restores += 1
            ok = self.test_restore_ok
            return {"ok": ok, "problems": [] if ok else ["database: repository corrupted"]}

        return DrSchedule(
            environment="staging",
            store=self.rig.store,
            clock=self.rig.clock,
            newest_points=lambda: dict(self.newest),
            policies=BackupsConfig().policies(),
            notify=self.notices.append,
            test_restore=test_restore,
            run_drill=self.drills.append if run_drills else None,
        )

    def controller(self, schedule: DrSchedule) -> Controller:
        return Controller(
            store=self.rig.store,
            clock=self.rig.clock,
            environment="staging",
            traffic=self.rig.traffic,
            compute=MemoryCompute(cloud=self.rig.cloud),
            worker="ctl@host:1",
            tick_s=30.0,
            loops=schedule.loops(),
        )


def _run(ctl: Controller, seconds: float) -> None:
    ctl.run(threading.Event(), max_ticks=max(1, int(seconds / ctl.tick_s)))


def test_dr1_a_stale_database_backup_alarms_once_then_resolves(tmp_path: Path) -> None:
    w = World(make_rig(tmp_path))
    ctl = w.controller(w.schedule())
    _run(ctl, 120)
    assert [n for n in w.notices if n.kind == "backup.stale"] == []
    _run(ctl, 6 * 60)  # the database's RPO is 5 minutes: its newest point is now too old
    stale = [n for n in w.notices if n.kind == "backup.stale"]
    assert [(n.severity, n.fields["target"], n.resolve) for n in stale] == [
        ("warning", "database", False)
    ]
    assert "database" in stale[0].title
    _run(ctl, 300)  # still stale: not said again
    assert len([n for n in w.notices if n.kind == "backup.stale"]) == 1
    w.newest[BackupTarget.DATABASE] = w.rig.clock.now()  # WAL archived again
    _run(ctl, 61)
    closed = [n for n in w.notices if n.kind == "backup.stale" and n.resolve]
    assert [n.fields["target"] for n in closed] == ["database"]
    assert closed[0].dedup_key == stale[0].dedup_key
    kinds = [e.kind for e in w.rig.store.events() if e.kind.startswith("backup.")]
    assert kinds[:2] == ["backup.test_restore", "backup.stale"] and "backup.fresh" in kinds


def test_dr1_the_test_restore_runs_weekly_and_a_problem_is_said(tmp_path: Path) -> None:
    w = World(make_rig(tmp_path))
    sched = w.schedule()
    ctl = w.controller(sched)
    _run(ctl, 61)
    assert w.test_restores == 1  # never done: due at once
    w.rig.clock.advance(86400)
    w.newest = dict.fromkeys(w.newest, w.rig.clock.now())
    _run(ctl, 61)
    assert w.test_restores == 1
    due = {i.what: i for i in sched.due()}["test-restore"]
    assert due.next_due is not None and not due.overdue
    assert due.next_due - w.rig.clock.now() < timedelta(days=6)
    w.test_restore_ok = False
    w.rig.clock.advance(6 * 86400)
    w.newest = dict.fromkeys(w.newest, w.rig.clock.now())
    _run(ctl, 61)
    assert w.test_restores == 2
    bad = [n for n in w.notices if n.kind == "backup.test_restore_failed"]
    assert len(bad) == 1 and "repository corrupted" in bad[0].text
    # a controller started afresh reads the last one from the store: not due again
    again = World(w.rig)
    _run(again.controller(again.schedule()), 61)
    assert again.test_restores == 0


def test_dr7_drills_are_announced_quarterly_and_run_when_automatic(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    w = World(rig)
    sched = w.schedule(run_drills=True)
    ctl = w.controller(sched)
    _run(ctl, 61)
    assert w.drills == list(DrillScenario)  # never drilled: every scenario is due
    due_notices = [n for n in w.notices if n.kind == "dr.drill_due"]
    assert len(due_notices) == len(DrillScenario)
    _run(ctl, 120)
    assert len(w.drills) == len(DrillScenario)  # each due date once
    for sc in DrillScenario:  # the drills ran (as operations in the store)
        rig.store.create_operation(
            OperationRecord(
                id=f"drl-{sc.value}",
                kind="drill",
                environment="staging",
                target="web",
                status="succeeded",
                owner="ctl@host:1",
                plan={"strategy": sc.value, "steps": []},
                created_at=rig.clock.now(),
                updated_at=rig.clock.now(),
            )
        )
    items = {i.what: i for i in sched.due()}
    nxt = items["drill:db-loss"].next_due
    assert nxt is not None and nxt - rig.clock.now() == timedelta(days=91)
    assert not items["drill:db-loss"].overdue
    rig.clock.advance(90 * 86400)
    w.newest = dict.fromkeys(w.newest, rig.clock.now())
    _run(ctl, 61)
    assert len(w.drills) == len(DrillScenario)
    rig.clock.advance(86400)
    _run(ctl, 61)
    assert len(w.drills) == 2 * len(DrillScenario)  # the next quarter


def test_dr7_without_automatic_a_due_drill_is_only_announced(tmp_path: Path) -> None:
    w = World(make_rig(tmp_path))
    _run(w.controller(w.schedule()), 61)
    assert w.drills == []
    texts = [n.text for n in w.notices if n.kind == "dr.drill_due"]
    assert any("deployops dr drill db-loss" in t for t in texts)
