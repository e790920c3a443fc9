"""The controller's disaster-recovery schedule (DR-1, DR-7): backup freshness against each
target's RPO, the scheduled test restore, and the quarterly drills.

Three self-contained loops for :class:`~deployops.engine.controller.Controller` (its
``loops``), due dates on the injected clock (virtual in tests), what was last done read back
from the store (events and drill operations), so a restarted controller neither forgets nor
repeats:

* **freshness** — when the newest restorable point of any target is older than its RPO
  allows, a warning goes out through the notification routes (once per stale spell; a
  recovery is said once too);
* **test restore** — every ``test_restore_every_s`` (weekly by default) the newest database
  backup is restored into a scratch instance and read, the repository verified, part of the
  application data read back; the result is an event, a problem is a warning notice;
* **drills** — every scenario is due ``drill_every_s`` after its last drill (quarterly); a due
  drill is announced to the routes, and run only when a runner is given (a drill breaks the
  service on purpose: by default people start it with ``deployops dr drill``).

>>> schedule = DrSchedule(environment="staging", store=store, clock=clock,
...                       newest_points=lambda: {...}, policies=project.backups.policies())
>>> controller = Controller(..., loops=schedule.loops())  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from deployops.clock import Clock
from deployops.domain.backup import (
    DRILL_INTERVAL_S,
    BackupPolicy,
    BackupTarget,
    DrillScenario,
    drill_due,
    freshness,
)
from deployops.engine.events import Notice, Notify
from deployops.errors import DeployopsError
from deployops.store import EventRecord, StateStore

__all__ = [
    "DEFAULT_TEST_RESTORE_EVERY_S",
    "TEST_RESTORE_EVENT",
    "DrSchedule",
    "DueItem",
    "Loop",
]

DEFAULT_TEST_RESTORE_EVERY_S = 7 * 86400.0
TEST_RESTORE_EVENT = "backup.test_restore"
# The targets with restorable points the freshness alarm watches (config is the Git history,
# logs are kept, not restored).
WATCHED = (BackupTarget.DATABASE, BackupTarget.APP_DATA)

Loop = tuple[float, Callable[[], object]]  # (every seconds, what runs)


@dataclass(frozen=True, slots=True)
class DueItem:
    """One scheduled thing of ``deployops dr status``: when it was last done, when next."""

    what: str  # "test-restore", "drill:db-loss", "freshness:database"
    last_at: datetime | None
    next_due: datetime | None
    overdue: bool
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "last_at": self.last_at.isoformat() if self.last_at else None,
            "next_due": self.next_due.isoformat() if self.next_due else None,
            "overdue": self.overdue,
            "detail": self.detail,
        }


@dataclass
class DrSchedule:
    environment: str
    store: StateStore
    clock: Clock
    # target -> the newest restorable point (None: never backed up; a target left out is not
    # watched); raises DeployopsError when a repository cannot be read (stale, with why)
    newest_points: Callable[[], Mapping[BackupTarget, datetime | None]]
    policies: Mapping[BackupTarget, BackupPolicy]
    notify: Notify | None = None
    # runs the test restore; returns None when there is nothing to test yet (no database)
    test_restore: Callable[[], Mapping[str, Any] | None] | None = None
    test_restore_every_s: float = DEFAULT_TEST_RESTORE_EVERY_S
    drill_every_s: float = DRILL_INTERVAL_S
    # scenario -> runs the drill (None: due drills are announced, people run them)
    run_drill: Callable[[DrillScenario], object] | None = None
    freshness_every_s: float = 60.0
    check_every_s: float = 60.0
    _stale: dict[str, str] = field(default_factory=dict)
    _announced: set[str] = field(default_factory=set)

    def loops(self) -> dict[str, Loop]:
        """The controller's loops, by name (``Controller(loops=...)``)."""
        out: dict[str, Loop] = {
            "dr.freshness": (self.freshness_every_s, self.check_freshness),
            "dr.drills": (self.check_every_s, self.run_due_drills),
        }
        if self.test_restore is not None:
            out["dr.test_restore"] = (self.check_every_s, self.run_due_test_restore)
        return out

    # ------------------------------------------------------------------ freshness
    def freshness_rows(self) -> list[dict[str, Any]]:
        now = self.clock.now()
        try:
            newest = dict(self.newest_points())
            error = ""
        except DeployopsError as exc:
            newest, error = {}, exc.message
        rows = []
        # a target the environment does not have (no database started, no application data)
        # is not watched; a repository that cannot be read counts as stale for every target
        for target in WATCHED if error else [t for t in WATCHED if t in newest]:
            policy = self.policies[target]
            f = freshness(policy, newest=newest.get(target), now=now)
            rows.append(
                {
                    "target": target.value,
                    "ok": f.ok and not error,
                    "newest": f.newest.isoformat() if f.newest else None,
                    "age_seconds": f.age_s,
                    "allowed_seconds": f.allowed_s,
                    "text": f"{target.value}: {error}" if error else f.describe(),
                }
            )
        return rows

    def check_freshness(self) -> list[dict[str, Any]]:
        """One run of the freshness alarm: a warning per target that turned stale, an info
        notice when it is fresh again."""
        rows = self.freshness_rows()
        for r in rows:
            target = str(r["target"])
            if not r["ok"] and target not in self._stale:
                self._stale[target] = str(r["text"])
                self._event("backup.stale", str(r["text"]), level="warning", data=r)
                self._send(
                    "warning",
                    "backup.stale",
                    f"Backups of {target} are stale in {self.environment}",
                    str(r["text"]),
                    target=target,
                )
            elif r["ok"] and target in self._stale:
                del self._stale[target]
                self._event("backup.fresh", str(r["text"]), data=r)
                # the same incident, closed (same key and severity: it reaches the same people)
                self._send(
                    "warning",
                    "backup.stale",
                    f"Backups of {target} are fresh again in {self.environment}",
                    str(r["text"]),
                    resolve=True,
                    target=target,
                )
        return rows

    # ------------------------------------------------------------------ test restore
    def last_test_restore(self) -> datetime | None:
        mine = [
            e
            for e in self.store.events(kind=TEST_RESTORE_EVENT, limit=100_000)
            if e.environment == self.environment
        ]
        return mine[-1].ts if mine else None

    def test_restore_due(self, now: datetime | None = None) -> datetime:
        """When the next test restore is due (``now`` when none was ever done)."""
        last = self.last_test_restore()
        if last is None:
            return now or self.clock.now()
        return last + timedelta(seconds=self.test_restore_every_s)

    def run_due_test_restore(self) -> Mapping[str, Any] | None:
        """Run the test restore when it is due; its result is stored (and said when bad)."""
        if self.test_restore is None or self.test_restore_due() > self.clock.now():
            return None
        try:
            got = self.test_restore()
        except DeployopsError as exc:
            got = {"ok": False, "problems": [exc.message]}
        if got is None:
            return None  # nothing to test yet: still due
        result = dict(got)
        problems = [str(p) for p in result.get("problems", ())]
        ok = bool(result.get("ok")) and not problems
        self._event(
            TEST_RESTORE_EVENT,
            "scheduled test restore " + ("passed" if ok else "found problems"),
            level="info" if ok else "warning",
            data={"problems": "; ".join(problems), "scheduled": True},
        )
        if not ok:
            self._send(
                "warning",
                "backup.test_restore_failed",
                f"The scheduled test restore found problems in {self.environment}",
                "; ".join(problems),
            )
        return result

    # ------------------------------------------------------------------ drills
    def last_drills(self) -> dict[DrillScenario, datetime]:
        """The start of each scenario's newest drill (drill operations in the store)."""
        last: dict[DrillScenario, datetime] = {}
        for op in self.store.list_operations(
            kinds=["drill"], environment=self.environment, limit=1000
        ):
            try:
                sc = DrillScenario(str(op.plan.get("strategy", "")))
            except ValueError:
                continue
            if sc not in last or op.created_at > last[sc]:
                last[sc] = op.created_at
        return last

    def run_due_drills(self) -> list[str]:
        """Announce (and with a runner, run) every drill that is due; each due date once."""
        now = self.clock.now()
        last = self.last_drills()
        done = []
        for sc in DrillScenario:
            due = drill_due(last.get(sc), now=now, every_s=self.drill_every_s)
            if due > now:
                continue
            key = f"{sc.value}@{last[sc].isoformat() if sc in last else 'never'}"
            if key in self._announced:
                continue
            self._announced.add(key)
            ran = self.run_drill is not None
            text = f"the {sc.value} drill is due in {self.environment}: " + (
                "the controller starts it now" if ran else f"run deployops dr drill {sc.value}"
            )
            self._event("dr.drill_due", text, data={"scenario": sc.value, "run": ran})
            self._send("info", "dr.drill_due", f"Drill {sc.value} is due", text, scenario=sc.value)
            if self.run_drill is not None:
                try:
                    self.run_drill(sc)
                except DeployopsError as exc:
                    self._event(
                        "dr.drill_failed",
                        f"the scheduled {sc.value} drill failed: {exc.message}",
                        level="warning",
                        data={"scenario": sc.value},
                    )
            done.append(sc.value)
        return done

    # ------------------------------------------------------------------ what is due
    def due(self) -> list[DueItem]:
        """Everything this schedule does, with its last and next dates (``dr status``)."""
        now = self.clock.now()
        items = []
        for r in self.freshness_rows():
            items.append(
                DueItem(
                    what=f"freshness:{r['target']}",
                    last_at=datetime.fromisoformat(r["newest"]) if r["newest"] else None,
                    next_due=None,
                    overdue=not r["ok"],
                    detail=str(r["text"]),
                )
            )
        if self.test_restore is not None:
            nxt = self.test_restore_due(now)
            items.append(
                DueItem(
                    what="test-restore",
                    last_at=self.last_test_restore(),
                    next_due=nxt,
                    overdue=nxt <= now,
                )
            )
        last = self.last_drills()
        for sc in DrillScenario:
            nxt = drill_due(last.get(sc), now=now, every_s=self.drill_every_s)
            items.append(
                DueItem(
                    what=f"drill:{sc.value}", last_at=last.get(sc), next_due=nxt, overdue=nxt <= now
                )
            )
        return items

    # ------------------------------------------------------------------ helpers
    def _event(
        self,
        kind: str,
        message: str,
        *,
        level: str = "info",
        data: Mapping[str, Any] | None = None,
    ) -> None:
        self.store.add_event(
            EventRecord(
                ts=self.clock.now(),
                kind=kind,
                level=level,
                message=message,
                environment=self.environment,
                data=dict(data or {}),
            )
        )

    def _send(
        self,
        severity: str,
        kind: str,
        title: str,
        text: str,
        *,
        resolve: bool = False,
        **fields: str,
    ) -> None:
        if self.notify is None:
            return
        try:
            self.notify(
                Notice(
                    severity=severity,  # type: ignore[arg-type]
                    kind=kind,
                    title=title,
                    text=text,
                    dedup_key=f"{kind}:{self.environment}:{':'.join(fields.values())}",
                    fields={"environment": self.environment, **fields},
                    resolve=resolve,
                    environment=self.environment,
                )
            )
        except Exception:  # noqa: BLE001 - a channel never breaks the schedule
            self._event("notify.failed", f"notification failed: {title}", level="warning")
