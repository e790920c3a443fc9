"""Two controllers, one state store: two controller processes on one PostgreSQL store; exactly
one acts at a time (a lease in the store, renewed by the holder), the standby takes over within
a bound when the acting one is killed with SIGKILL, no job runs twice and an alarm that fires
once notifies once.

The platform is the in-memory reference platform (see ``controller_pair_proc.py``): what is
shown is the election and the hand-over on the real PostgreSQL store, not a cloud's behaviour."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deployops.engine.cleanup import JOB_DELETE_TARGET_GROUP
from deployops.engine.lease import controller_lease_name
from deployops.store import StateStore
from pg import PgCluster

pytestmark = pytest.mark.integration

PROC = Path(__file__).with_name("controller_pair_proc.py")
GROUPS = 40
TTL_S = 1.0
LEASE = controller_lease_name("production")


def _start(url: str, workdir: Path) -> subprocess.Popen[bytes]:
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "CONTROLLER_PAIR_GROUPS": str(GROUPS),
        "CONTROLLER_PAIR_TTL": str(TTL_S),
        "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)]),
    }
    return subprocess.Popen(
        [sys.executable, str(PROC), url, str(workdir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _holder_pid(store: StateStore) -> int | None:
    lease = store.get_lease(LEASE)
    if lease is None or lease.expires_at < time.time():
        return None
    return int(lease.holder.rpartition(":")[2])


def test_one_controller_acts_the_standby_takes_over_and_nothing_runs_twice(
    tmp_path: Path, pg_cluster: PgCluster
) -> None:
    url = pg_cluster.create_database("two_controllers")
    store = StateStore.open(url)

    def schedule(groups: range) -> None:
        for i in groups:
            store.schedule_job(
                kind=JOB_DELETE_TARGET_GROUP,
                dedup_key=f"{JOB_DELETE_TARGET_GROUP}:dep-{i}:old-{i}",
                due_at=datetime(2026, 1, 1, tzinfo=UTC),
                payload={"environment": "production", "service": "web", "target_group": f"old-{i}"},
            )

    schedule(range(GROUPS // 2))
    deleted, notices = tmp_path / "deleted.log", tmp_path / "notices.log"
    procs = [_start(url, tmp_path), _start(url, tmp_path)]
    try:
        assert _wait(lambda: _holder_pid(store) in {p.pid for p in procs}, 30), "nobody leads"
        assert _wait(lambda: len(_lines(deleted)) >= 5, 30), "the acting controller did no work"
        assert _wait(lambda: len(_lines(notices)) >= 1, 30), "the breached alarm did not notify"
        first = _holder_pid(store)
        standby = next(p for p in procs if p.pid != first)
        # While both run, only the lease holder works.
        assert {int(pid) for _, pid in _lines(deleted)} == {first}

        killed = next(p for p in procs if p.pid == first)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        t_kill, killed_at = time.monotonic(), time.time()
        assert _wait(lambda: _holder_pid(store) == standby.pid, 30)
        took_over_s = time.monotonic() - t_kill
        schedule(range(GROUPS // 2, GROUPS))  # work that only the standby can do

        finished = _wait(
            lambda: all(j.status not in ("pending", "claimed") for j in store.jobs()), 60
        )
        assert finished, "the standby did not finish the jobs"

        # The standby evaluates the (still breached) alarm for a few 1 s periods after the
        # hand-over: it must not notify again.
        def evaluated_after_takeover() -> bool:
            state = store.alarm_state("production", "web", "LowHealthyHosts")
            return state is not None and state.evaluated_at.timestamp() > killed_at + 3

        assert _wait(evaluated_after_takeover, 30), "the standby does not evaluate alarms"
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        errors = b"".join(p.communicate(timeout=10)[1] for p in procs)

    # The lease expires TTL_S after the last renewal (renewed every TTL_S / 3); the standby
    # notices at its next tick (50 ms). Generous for a loaded machine, tight enough to matter.
    assert took_over_s <= TTL_S + 5, took_over_s
    jobs = store.jobs()
    assert {j.status for j in jobs} == {"done"}, errors.decode()[-2000:]
    counts = Counter(name for name, _ in _lines(deleted))
    assert set(counts) == {f"old-{i}" for i in range(GROUPS)}
    assert max(counts.values()) == 1, "a target group was deleted twice"
    assert {int(pid) for _, pid in _lines(deleted)} == {first, standby.pid}
    fired = _lines(notices)
    assert len(fired) == 1, f"the alarm notified {len(fired)} times: {fired}"
    leading = [e for e in store.events(limit=500) if e.kind == "controller.leading"]
    assert len(leading) == 2, [e.message for e in leading]  # the first holder, then the standby
    store.close()
