"""DR-1 policies, DR-2 recovery windows, DR-7 drill arithmetic: pure functions."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from deployops.config.backups import BackupsConfig
from deployops.domain.backup import (
    DEFAULT_POLICIES,
    BackupPoint,
    BackupTarget,
    DrillScenario,
    achieved_rpo_s,
    achieved_rto_s,
    archive_timeout_s,
    drill_due,
    expired,
    freshness,
    judge_drill,
    next_due,
    pgbackrest_options,
    recovery_window,
    restic_forget_args,
    target_time_problem,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _point(hours: float, target: BackupTarget = BackupTarget.DATABASE) -> BackupPoint:
    at = T0 + timedelta(hours=hours)
    return BackupPoint(target=target, id=f"p{hours}", kind="full", started_at=at, finished_at=at)


def test_dr1_defaults_are_the_guides_table() -> None:
    db = DEFAULT_POLICIES[BackupTarget.DATABASE]
    assert (db.every_s, db.retention_s, db.rpo_s, db.rto_s) == (86400, 30 * 86400, 300, 3600)
    app = DEFAULT_POLICIES[BackupTarget.APP_DATA]
    assert (app.every_s, app.retention_s, app.rpo_s, app.rto_s) == (3600, 7 * 86400, 3600, 1800)
    cfg = DEFAULT_POLICIES[BackupTarget.CONFIG]
    assert (cfg.every_s, cfg.retention_s, cfg.rpo_s, cfg.rto_s) == (None, 90 * 86400, 0, 900)
    logs = DEFAULT_POLICIES[BackupTarget.LOGS]
    assert logs.retention_s == 90 * 86400


def test_dr1_config_section_overrides_only_what_it_names() -> None:
    cfg = BackupsConfig.model_validate({"database": {"rpo": "1m"}, "app_data": {"every": "30m"}})
    db = cfg.policy(BackupTarget.DATABASE)
    assert db.rpo_s == 60
    assert db.retention_s == 30 * 86400
    assert cfg.policy(BackupTarget.APP_DATA).every_s == 1800
    assert cfg.policies()[BackupTarget.CONFIG] == DEFAULT_POLICIES[BackupTarget.CONFIG]


def test_dr1_one_policy_renders_to_each_engines_settings() -> None:
    db = DEFAULT_POLICIES[BackupTarget.DATABASE]
    opts = pgbackrest_options(db, process_max=1)
    assert opts["repo1-retention-full-type"] == "time"
    assert opts["repo1-retention-full"] == "30"
    assert opts["compress-type"] == "zst"
    assert int(opts["process-max"]) >= 2
    assert archive_timeout_s(db) == 60  # a fifth of the 5-minute RPO
    # --keep-within, never --keep-hourly (which buckets by clock hour)
    assert restic_forget_args(DEFAULT_POLICIES[BackupTarget.APP_DATA]) == ["--keep-within", "168h"]


def test_schedule_next_due() -> None:
    db = DEFAULT_POLICIES[BackupTarget.DATABASE]
    assert next_due(db, last=None, now=T0) == T0
    assert next_due(db, last=T0, now=T0 + timedelta(hours=1)) == T0 + timedelta(days=1)
    cfg = DEFAULT_POLICIES[BackupTarget.CONFIG]
    assert next_due(cfg, last=T0, now=T0 + timedelta(hours=1)) == T0 + timedelta(hours=1)


def test_retention_expires_old_points_but_always_keeps_the_newest() -> None:
    db = DEFAULT_POLICIES[BackupTarget.DATABASE]
    points = [_point(0), _point(24 * 10), _point(24 * 40)]
    now = T0 + timedelta(days=45)
    assert [p.id for p in expired(db, points, now=now)] == ["p0", "p240"]
    # a single ancient point is kept: it is all there is
    assert expired(db, [_point(0)], now=T0 + timedelta(days=400)) == []


def test_dr2_target_time_inside_outside_and_in_the_future() -> None:
    window = recovery_window([_point(0), _point(24)], archived_until=T0 + timedelta(hours=30))
    now = T0 + timedelta(hours=31)
    assert target_time_problem(T0 + timedelta(hours=12), window, now=now) is None
    assert "outside the retention" in str(
        target_time_problem(T0 - timedelta(hours=1), window, now=now)
    )
    assert "future" in str(target_time_problem(now + timedelta(minutes=1), window, now=now))
    assert "newest archived" in str(
        target_time_problem(T0 + timedelta(hours=30, minutes=30), window, now=now)
    )
    empty = recovery_window([], archived_until=None)
    assert "no backup" in str(target_time_problem(T0, empty, now=now))


def test_freshness_alarm_compares_the_newest_point_with_the_rpo() -> None:
    db = DEFAULT_POLICIES[BackupTarget.DATABASE]
    assert freshness(db, newest=T0, now=T0 + timedelta(minutes=4)).ok
    stale = freshness(db, newest=T0, now=T0 + timedelta(minutes=6))
    assert not stale.ok
    assert "STALE" in stale.describe()
    assert not freshness(db, newest=None, now=T0).ok
    app = DEFAULT_POLICIES[BackupTarget.APP_DATA]
    assert freshness(app, newest=T0, now=T0 + timedelta(minutes=59)).ok


def test_dr7_rto_and_rpo_arithmetic() -> None:
    assert achieved_rto_s(failure_at=T0, serving_at=T0 + timedelta(seconds=42)) == 42
    assert achieved_rpo_s(last_before_failure=T0 + timedelta(seconds=10), last_present=T0) == 10
    assert achieved_rpo_s(last_before_failure=T0, last_present=T0) == 0
    assert achieved_rpo_s(last_before_failure=T0, last_present=None) == math.inf


def test_dr7_no_verdict_without_evidence() -> None:
    ok = judge_drill(
        DrillScenario.DB_LOSS,
        rto_s=30,
        rpo_s=1,
        rto_target_s=3600,
        rpo_target_s=300,
        notified=True,
    )
    assert ok.passed
    unmeasured = judge_drill(
        DrillScenario.DB_LOSS,
        rto_s=None,
        rpo_s=1,
        rto_target_s=3600,
        rpo_target_s=300,
        notified=True,
    )
    assert not unmeasured.passed
    assert "recovery time was not measured" in unmeasured.problems[0]
    missed = judge_drill(
        DrillScenario.DB_LOSS,
        rto_s=4000,
        rpo_s=1,
        rto_target_s=3600,
        rpo_target_s=300,
        notified=True,
    )
    assert not missed.rto_met and missed.rpo_met and not missed.passed


@pytest.mark.parametrize("last", [None, T0])
def test_dr7_drills_are_due_quarterly(last: datetime | None) -> None:
    due = drill_due(last, now=T0 + timedelta(days=1))
    assert due == (T0 + timedelta(days=1) if last is None else T0 + timedelta(days=91))


def test_dr1_every_zero_means_on_change() -> None:
    cfg = BackupsConfig.model_validate({"config": {"every": 0}, "app_data": {"every": "2h"}})
    assert cfg.policy(BackupTarget.CONFIG).every_s is None
    assert cfg.policy(BackupTarget.APP_DATA).every_s == 7200
