"""``deployops cleanup``: lists the old target groups scheduled for deletion (text and -o json)
and runs those due; a platform that cannot be reached leaves them scheduled (exit 1). The
deletion itself, under the lock, is tests/unit/engine/test_cleanup.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from deployops.config.project import load_project
from deployops.engine.cleanup import JOB_DELETE_TARGET_GROUP
from deployops.store import StateStore
from tests.unit.cli.test_cli_commands import Result, cli, project

__all__ = ["cli", "project"]


def _schedule(folder: Path) -> StateStore:
    cfg = load_project(folder / "deployops.yaml")
    env = "development"
    store = StateStore.open(cfg.state_url())
    now = datetime.now(UTC)
    for dep, group, due in (
        ("dep-1", "web-blue", now - timedelta(minutes=5)),
        ("dep-2", "web-green", now + timedelta(hours=23)),
    ):
        store.schedule_job(
            kind=JOB_DELETE_TARGET_GROUP,
            dedup_key=f"{JOB_DELETE_TARGET_GROUP}:{dep}:{group}",
            due_at=due,
            payload={
                "environment": env,
                "service": next(iter(cfg.services)),
                "target_group": group,
                "deployment_id": dep,
            },
        )
    return store


def test_cleanup_lists_what_is_scheduled_and_when(
    project: Path, cli: Callable[..., Result]
) -> None:
    store = _schedule(project)
    try:
        out = cli(project, "-o", "json", "-e", "development", "cleanup", "--dry-run")
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        rows = {r["target_group"]: r for r in doc["scheduled"]}
        assert rows["web-blue"]["due"] is True and rows["web-green"]["due"] is False
        assert rows["web-blue"]["deployment_id"] == "dep-1"
        assert doc["ran"] == [] and doc["dry_run"] is True
        text = cli(project, "-e", "development", "cleanup", "--dry-run")
        assert text.returncode == 0
        assert "web-blue" in text.stdout and "due now" in text.stdout
        assert "nothing was deleted" in text.stdout
        assert len(store.jobs(status="pending")) == 2
    finally:
        store.close()


def test_cleanup_with_the_platform_down_keeps_the_deletion_scheduled(
    project: Path, cli: Callable[..., Result]
) -> None:
    store = _schedule(project)
    try:
        out = cli(project, "-o", "json", "-e", "development", "cleanup")
        assert out.returncode == 1
        # JSON lines: what ran, then the failure as a JSON object of its own
        doc, failure = (json.loads(line) for line in out.stdout.splitlines())
        assert (failure["ok"], failure["exit_code"]) == (False, 1)
        (ran,) = doc["ran"]
        assert ran["target_group"] == "web-blue" and ran["status"] == "unavailable"
        assert "deployops local up" in out.stderr
        assert len(store.jobs(status="pending")) == 2  # nothing lost: both still scheduled
    finally:
        store.close()


def test_cleanup_with_nothing_scheduled_says_so(project: Path, cli: Callable[..., Result]) -> None:
    out = cli(project, "-e", "development", "cleanup")
    assert out.returncode == 0
    assert "no target group is scheduled for deletion" in out.stdout
