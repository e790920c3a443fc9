"""Backup policies and their arithmetic (DR-1, DR-2, DR-7): pure, standard library only.

One :class:`BackupPolicy` per target says how often it is backed up, how long points are
kept and what recovery point / recovery time the team promises. Everything here is a
function of the policy, the recorded points and a ``now`` handed in by the caller:

>>> from datetime import datetime, timezone
>>> p = DEFAULT_POLICIES[BackupTarget.DATABASE]
>>> p.rpo_s, p.rto_s, p.retention_s // 86400
(300.0, 3600.0, 30.0)
>>> now = datetime(2026, 1, 31, tzinfo=timezone.utc)
>>> next_due(p, last=datetime(2026, 1, 30, 12, tzinfo=timezone.utc), now=now).hour
12

The policy renders to each engine's own settings (:func:`pgbackrest_options`,
:func:`restic_forget_args`) so one table drives every tool.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = [
    "DEFAULT_POLICIES",
    "DRILL_INTERVAL_S",
    "BackupPoint",
    "BackupPolicy",
    "BackupTarget",
    "DbInstance",
    "DbRole",
    "DrillOutcome",
    "DrillScenario",
    "Freshness",
    "RecoveryWindow",
    "RestoreTarget",
    "achieved_rpo_s",
    "achieved_rto_s",
    "archive_timeout_s",
    "drill_due",
    "expired",
    "freshness",
    "judge_drill",
    "next_due",
    "pgbackrest_options",
    "recovery_window",
    "restic_forget_args",
    "target_time_problem",
]

DAY = 86400.0
HOUR = 3600.0
DRILL_INTERVAL_S = 91 * DAY  # DR-7: quarterly


class BackupTarget(StrEnum):
    """What is backed up (DR-1's four rows)."""

    DATABASE = "database"
    APP_DATA = "app-data"
    CONFIG = "config"
    LOGS = "logs"


class DrillScenario(StrEnum):
    """DR-7's four drills."""

    DB_LOSS = "db-loss"
    REGION_FAILURE = "region-failure"
    DATA_CORRUPTION = "data-corruption"
    SECURITY_INCIDENT = "security-incident"


@dataclass(frozen=True, slots=True)
class BackupPolicy:
    """How one target is protected. ``every_s`` is ``None`` for targets kept on every change
    (config) or continuously (logs, the database's WAL between full backups)."""

    target: BackupTarget
    every_s: float | None
    retention_s: float
    method: str
    rpo_s: float
    rto_s: float
    differential_every_s: float | None = None  # database: a diff between the daily fulls

    @property
    def retention_days(self) -> int:
        """Whole days, rounded up: what tools that count days are given."""
        return max(1, math.ceil(self.retention_s / DAY))


# DR-1: the guide's table, used when deployops.yaml says nothing.
DEFAULT_POLICIES: dict[BackupTarget, BackupPolicy] = {
    BackupTarget.DATABASE: BackupPolicy(
        target=BackupTarget.DATABASE,
        every_s=DAY,
        retention_s=30 * DAY,
        method="snapshot + point-in-time recovery",
        rpo_s=300.0,
        rto_s=HOUR,
        differential_every_s=6 * HOUR,
    ),
    BackupTarget.APP_DATA: BackupPolicy(
        target=BackupTarget.APP_DATA,
        every_s=HOUR,
        retention_s=7 * DAY,
        method="incremental backup to object storage",
        rpo_s=HOUR,
        rto_s=30 * 60.0,
    ),
    BackupTarget.CONFIG: BackupPolicy(
        target=BackupTarget.CONFIG,
        every_s=None,
        retention_s=90 * DAY,
        method="git history + versioned object store",
        rpo_s=0.0,
        rto_s=15 * 60.0,
    ),
    BackupTarget.LOGS: BackupPolicy(
        target=BackupTarget.LOGS,
        every_s=None,
        retention_s=90 * DAY,
        method="continuous shipping with rotation",
        rpo_s=0.0,
        rto_s=0.0,
    ),
}


@dataclass(frozen=True, slots=True)
class BackupPoint:
    """One restorable backup as a tool reported it (a pgBackRest set, a restic snapshot)."""

    target: BackupTarget
    id: str
    kind: str  # full, diff, incr, snapshot
    started_at: datetime
    finished_at: datetime
    size_bytes: int = 0
    added_bytes: int = 0  # what this backup stored that earlier ones did not


def next_due(policy: BackupPolicy, *, last: datetime | None, now: datetime) -> datetime:
    """When the next scheduled backup is due: ``now`` if there never was one or the policy
    backs up on change; otherwise one interval after the last."""
    if last is None or policy.every_s is None:
        return now
    return last + timedelta(seconds=policy.every_s)


def expired(
    policy: BackupPolicy, points: Iterable[BackupPoint], *, now: datetime
) -> list[BackupPoint]:
    """Points older than the retention, never the newest one (a target always keeps one
    restorable point, however old: deleting it would leave nothing to restore)."""
    ordered = sorted(points, key=lambda p: p.finished_at)
    if not ordered:
        return []
    cutoff = now - timedelta(seconds=policy.retention_s)
    return [p for p in ordered[:-1] if p.finished_at < cutoff]


@dataclass(frozen=True, slots=True)
class RecoveryWindow:
    """The span a point-in-time restore can reach: from the oldest backup's end to the newest
    archived change (``None`` when nothing has been backed up)."""

    earliest: datetime | None
    latest: datetime | None

    @property
    def empty(self) -> bool:
        return self.earliest is None or self.latest is None


def recovery_window(
    points: Sequence[BackupPoint], *, archived_until: datetime | None
) -> RecoveryWindow:
    """DR-2: PITR reaches any moment between the first backup's end and the last archived WAL
    (or, without WAL, the newest backup's end)."""
    if not points:
        return RecoveryWindow(None, None)
    earliest = min(p.finished_at for p in points)
    newest = max(p.finished_at for p in points)
    latest = max(newest, archived_until) if archived_until else newest
    return RecoveryWindow(earliest, latest)


def target_time_problem(target: datetime, window: RecoveryWindow, *, now: datetime) -> str | None:
    """Why ``target`` cannot be restored to, or ``None`` when it can."""
    if target > now:
        return f"{target.isoformat()} is in the future (now is {now.isoformat()})"
    if window.empty:
        return "there is no backup yet to restore from"
    assert window.earliest is not None
    assert window.latest is not None
    if target < window.earliest:
        return (
            f"{target.isoformat()} is before the oldest backup ({window.earliest.isoformat()}); "
            "it is outside the retention"
        )
    if target > window.latest:
        return (
            f"{target.isoformat()} is after the newest archived change "
            f"({window.latest.isoformat()})"
        )
    return None


@dataclass(frozen=True, slots=True)
class Freshness:
    """DR-1 / freshness alarm: is the newest restorable point within the RPO?"""

    target: BackupTarget
    newest: datetime | None
    age_s: float | None
    rpo_s: float
    # How long a backup may take before it counts as missed: the schedule plus a margin.
    allowed_s: float

    @property
    def ok(self) -> bool:
        return self.age_s is not None and self.age_s <= self.allowed_s

    def describe(self) -> str:
        if self.newest is None or self.age_s is None:
            return f"{self.target.value}: no restorable point yet"
        state = "fresh" if self.ok else "STALE"
        return (
            f"{self.target.value}: newest restorable point {self.age_s:.0f}s old "
            f"(allowed {self.allowed_s:.0f}s): {state}"
        )


def freshness(policy: BackupPolicy, *, newest: datetime | None, now: datetime) -> Freshness:
    """The newest restorable point against the policy. The database archives WAL continuously,
    so its allowance is the RPO; a scheduled target cannot be fresher than its interval, so it
    is allowed the larger of the interval and the RPO."""
    if policy.target is BackupTarget.DATABASE or policy.every_s is None:
        allowed = policy.rpo_s
    else:
        allowed = max(policy.rpo_s, policy.every_s)
    age = None if newest is None else max(0.0, (now - newest).total_seconds())
    return Freshness(
        target=policy.target, newest=newest, age_s=age, rpo_s=policy.rpo_s, allowed_s=allowed
    )


def archive_timeout_s(policy: BackupPolicy) -> int:
    """PostgreSQL's ``archive_timeout`` for the database policy: a quiet database still ships a
    WAL segment at least this often, so the RPO holds. A fifth of the RPO, 10 s to 300 s."""
    return int(min(300.0, max(10.0, policy.rpo_s / 5)))


def pgbackrest_options(policy: BackupPolicy, *, process_max: int = 2) -> dict[str, str]:
    """The database policy in pgBackRest's terms (repository options, section ``global``).

    Retention is by time (``repo1-retention-full-type=time``: fulls older than the retention
    are expired once a newer full exists), compression zstd (4.2 s instead of 32 s with gz for
    1 GB here), and at least two processes."""
    return {
        "repo1-retention-full-type": "time",
        "repo1-retention-full": str(policy.retention_days),
        "compress-type": "zst",
        "process-max": str(max(2, process_max)),
        "start-fast": "y",
        "archive-async": "n",
    }


def restic_forget_args(policy: BackupPolicy) -> list[str]:
    """The retention as ``restic forget`` arguments. ``--keep-within`` keeps every snapshot
    younger than the retention (``--keep-hourly`` would bucket by clock hour and drop a second
    snapshot taken in the same hour)."""
    hours = max(1, math.ceil(policy.retention_s / HOUR))
    return ["--keep-within", f"{hours}h"]


# ---------------------------------------------------------------------------------- drills


def achieved_rto_s(*, failure_at: datetime, serving_at: datetime) -> float:
    """DR-7: from the failure to the service healthy and serving again."""
    return max(0.0, (serving_at - failure_at).total_seconds())


def achieved_rpo_s(*, last_before_failure: datetime | None, last_present: datetime | None) -> float:
    """DR-7: the data lost, as time: the last marker committed before the failure against the
    last one still present after the recovery (0 when nothing was lost)."""
    if last_before_failure is None:
        return 0.0
    if last_present is None:
        return math.inf
    return max(0.0, (last_before_failure - last_present).total_seconds())


@dataclass(frozen=True, slots=True)
class DrillOutcome:
    """What a drill achieved against its targets."""

    scenario: DrillScenario
    rto_s: float | None
    rpo_s: float | None
    rto_target_s: float
    rpo_target_s: float
    notified: bool
    problems: tuple[str, ...] = field(default=())

    @property
    def rto_met(self) -> bool:
        return self.rto_s is not None and self.rto_s <= self.rto_target_s

    @property
    def rpo_met(self) -> bool:
        return self.rpo_s is not None and self.rpo_s <= self.rpo_target_s

    @property
    def passed(self) -> bool:
        return self.rto_met and self.rpo_met and self.notified and not self.problems


def judge_drill(
    scenario: DrillScenario,
    *,
    rto_s: float | None,
    rpo_s: float | None,
    rto_target_s: float,
    rpo_target_s: float,
    notified: bool,
    problems: Sequence[str] = (),
) -> DrillOutcome:
    """No verdict without evidence: a drill that did not measure RTO or RPO fails."""
    out = list(problems)
    if rto_s is None:
        out.append("the recovery time was not measured")
    if rpo_s is None:
        out.append("the data loss was not measured")
    if not notified:
        out.append("no notification was delivered")
    return DrillOutcome(
        scenario=scenario,
        rto_s=rto_s,
        rpo_s=rpo_s,
        rto_target_s=rto_target_s,
        rpo_target_s=rpo_target_s,
        notified=notified,
        problems=tuple(out),
    )


def drill_due(
    last: datetime | None, *, now: datetime, every_s: float = DRILL_INTERVAL_S
) -> datetime:
    """When a scenario's next drill is due (quarterly by default; now if never drilled)."""
    return now if last is None else last + timedelta(seconds=every_s)


# ------------------------------------------------------------------------- instances


class DbRole(StrEnum):
    PRIMARY = "primary"
    STANDBY = "standby"
    SCRATCH = "scratch"  # a test restore's throwaway instance


@dataclass(frozen=True, slots=True)
class DbInstance:
    """One database instance and where the application reaches it (``DB_HOST`` / ``DB_PORT``)."""

    id: str
    host: str
    port: int
    role: DbRole
    running: bool = True
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RestoreTarget:
    """What a database restore recovers to: a moment (PITR), a backup (snapshot), or the end
    of the archived WAL (``latest``)."""

    to_time: datetime | None = None
    backup_id: str | None = None

    def __post_init__(self) -> None:
        if self.to_time is not None and self.backup_id is not None:
            raise ValueError("a restore targets a time or a backup, not both")

    def describe(self) -> str:
        if self.to_time is not None:
            return f"time {self.to_time.isoformat()}"
        if self.backup_id is not None:
            return f"backup {self.backup_id}"
        return "the newest archived change"
