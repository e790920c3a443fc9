"""A controller killed with SIGKILL and restarted runs each pending job exactly once (DEP-4:
deleting old target groups; the controller's jobs are rows claimed atomically)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deployops.engine.cleanup import JOB_DELETE_TARGET_GROUP
from deployops.store import StateStore

pytestmark = pytest.mark.integration

PROC = Path(__file__).with_name("controller_proc.py")
GROUPS = 30


def _start(state: str, workdir: Path) -> subprocess.Popen[bytes]:
    root = Path(__file__).resolve().parents[3]
    env = {
        **os.environ,
        "CONTROLLER_PROC_GROUPS": str(GROUPS),
        "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)]),
    }
    return subprocess.Popen(
        [sys.executable, str(PROC), state, str(workdir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _deleted(log: Path) -> list[str]:
    return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []


def _wait(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_dep4_controller_killed_with_sigkill_runs_each_job_exactly_once(tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path / 'state.db'}"
    store = StateStore.open(state)
    past = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(GROUPS):
        store.schedule_job(
            kind=JOB_DELETE_TARGET_GROUP,
            dedup_key=f"{JOB_DELETE_TARGET_GROUP}:dep-{i}:old-{i}",
            due_at=past,
            payload={"environment": "production", "service": "web", "target_group": f"old-{i}"},
        )
    log = tmp_path / "deleted.log"

    first = _start(state, tmp_path)
    try:
        assert _wait(lambda: len(_deleted(log)) >= 5, 30), "the first controller did no work"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    done_by_first = len(_deleted(log))
    assert done_by_first < GROUPS, "killed too late to show a restart"

    second = _start(state, tmp_path)
    try:
        finished = _wait(
            lambda: all(j.status != "pending" and j.status != "claimed" for j in store.jobs()), 60
        )
    finally:
        second.terminate()
        _, err = second.communicate(timeout=10)
    assert finished, err.decode()[-2000:]

    jobs = store.jobs()
    assert len(jobs) == GROUPS
    assert {j.status for j in jobs} == {"done"}
    counts = Counter(_deleted(log))
    assert set(counts) == {f"old-{i}" for i in range(GROUPS)}
    assert max(counts.values()) == 1, "a target group was deleted twice"
    # Both controllers did part of the work.
    pids = {line.split()[1] for line in log.read_text().splitlines()}
    assert len(pids) == 2
    store.close()
