"""Upgrade safety: a state store written by the previous release opens under this one, keeps
every deployment, step, decision and lock, and a migration killed half-way leaves a store the
next command migrates and uses.

``fixtures/state-0002.sql`` is a dump (``sqlite3 .iterdump``) of a store at schema revision 0002,
the schema of the release before the generic operation runner, filled through that release's
store API with the history a user would have: deployments, a rollback, a running deployment
holding its lock, steps, events, a decision with evidence, audit, metric samples, a scheduled
target-group deletion and an alarm transition."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from deployops.store import StateStore
from deployops.store.store import HEAD_REVISION

FIXTURE = Path(__file__).parent / "fixtures" / "state-0002.sql"
OLD_IDS = [
    "dep-20261130-100000-ffee",
    "dep-20261130-093412-0a0b",
    "dep-20261130-093000-e5f6",
    "dep-20261130-091500-c3d4",
    "dep-20261130-090000-a1b2",
]


def _old_store(tmp_path: Path) -> Path:
    db = tmp_path / "state.db"
    con = sqlite3.connect(db)
    con.executescript(FIXTURE.read_text(encoding="utf-8"))
    con.close()
    return db


def _assert_history_intact(store: StateStore) -> None:
    assert store.current_revision() == HEAD_REVISION
    deployments = store.list_deployments(limit=50)
    assert sorted(d.id for d in deployments) == sorted(OLD_IDS)
    rolled_back = store.require_deployment("dep-20261130-093000-e5f6")
    assert (rolled_back.status, rolled_back.version, rolled_back.previous_version) == (
        "rolled_back",
        "1.2.0",
        "1.1.0",
    )
    assert rolled_back.error == "error rate 7.9 % > 5 %"
    revert = store.require_deployment("dep-20261130-093412-0a0b")
    assert revert.reverts == "dep-20261130-093000-e5f6"
    steps = store.steps_for("dep-20261130-100000-ffee")
    assert [(s.seq, s.name, s.status) for s in steps] == [
        (1, "RegisterTaskDefinition", "succeeded"),
        (2, "SwitchListener", "started"),
    ]
    decisions = store.decisions(deployment_id="dep-20261130-093000-e5f6")
    assert [(d.rule, d.action, d.evidence["value"]) for d in decisions] == [
        ("error-rate", "rollback", 7.9)
    ]
    lock = store.get_lock("staging/web")
    assert lock is not None
    assert lock.deployment_id == "dep-20261130-100000-ffee"


def test_a_store_written_by_the_previous_release_opens_and_keeps_its_history(
    tmp_path: Path,
) -> None:
    db = _old_store(tmp_path)
    store = StateStore.open(f"sqlite:///{db}")
    try:
        _assert_history_intact(store)
    finally:
        store.close()


def test_the_cli_lists_and_shows_the_previous_release_history(tmp_path: Path) -> None:
    """What the user sees after upgrading: the same ids, statuses and steps."""
    folder = tmp_path / "shop"
    folder.mkdir()
    deployops = Path(sys.executable).parent / "deployops"
    subprocess.run([deployops, "init"], cwd=folder, check=True, capture_output=True)
    (folder / ".deployops").mkdir()
    con = sqlite3.connect(folder / ".deployops" / "state.db")
    con.executescript(FIXTURE.read_text(encoding="utf-8"))
    con.close()
    listed = subprocess.run(
        [deployops, "-o", "json", "deployments", "list"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert [row["id"] for row in json.loads(listed.stdout)] == OLD_IDS
    shown = subprocess.run(
        [deployops, "deployments", "show", "dep-20261130-093000-e5f6"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "rolled_back" in shown.stdout
    assert "1.2.0" in shown.stdout


_KILL_AT_DDL = """
import os, signal, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
from deployops.store import StateStore

kill_at = int(sys.argv[2])
seen = 0

@event.listens_for(Engine, "before_cursor_execute")
def _maybe_die(conn, cursor, statement, parameters, context, executemany):
    global seen
    verb = statement.lstrip().split(" ", 1)[0].upper()
    if verb in ("CREATE", "ALTER", "DROP", "INSERT", "UPDATE"):
        seen += 1
        if seen == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

StateStore.open("sqlite:///" + sys.argv[1])
print("migrated without reaching statement", kill_at)
"""


def _migration_statements(tmp_path: Path) -> int:
    """How many writing statements the upgrade from the fixture runs (counted on a copy)."""
    db = _old_store(tmp_path / "count")
    script = _KILL_AT_DDL.replace("os.kill(os.getpid(), signal.SIGKILL)", "pass").replace(
        'print("migrated', 'print(seen) or print("migrated'
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(db), "0"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.split()[0])


@pytest.mark.parametrize("fraction", [0.0, 0.34, 0.67, 0.99])
def test_a_migration_killed_half_way_leaves_a_store_the_next_open_migrates(
    tmp_path: Path, fraction: float
) -> None:
    """SIGKILL during the upgrade at the first, a middle and the last writing statement: the
    next ``StateStore.open`` finishes the migration and every row of the old history is there
    (each migration runs in one transaction, so a kill leaves the previous revision whole)."""
    (tmp_path / "count").mkdir()
    total = _migration_statements(tmp_path)
    assert total > 0, "the upgrade from the previous release writes to the store"
    kill_at = 1 + int(fraction * (total - 1))
    db = _old_store(tmp_path)
    child = subprocess.run(
        [sys.executable, "-c", _KILL_AT_DDL, str(db), str(kill_at)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ},
    )
    assert child.returncode == -signal.SIGKILL, (child.stdout, child.stderr)
    store = StateStore.open(f"sqlite:///{db}")
    try:
        _assert_history_intact(store)
    finally:
        store.close()
