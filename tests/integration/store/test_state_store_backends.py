"""One state-store suite, run on SQLite and on a real PostgreSQL 15 (the ``store`` fixture is
parametrized over both). Covers what the engine relies on: DEP-4 (the deployment log), the
durable intent/outcome record that lets a killed deploy resume, the one-deploy-at-a-time lock,
RB-1 decisions with evidence, metric samples, the audit log and the deferred-job queue."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import psutil
import pytest

from deployops.clock import VirtualClock
from deployops.errors import ConfigError, LockHeldError
from deployops.store import (
    AuditRecord,
    DecisionRecord,
    DeploymentRecord,
    EventRecord,
    JobRecord,
    MetricSample,
    StateStore,
)
from deployops.store.locks import Holder, current_holder
from deployops.store.store import HEAD_REVISION

T0 = datetime(2026, 11, 29, 17, 45, 1, 123456, tzinfo=UTC)


def _dep(dep_id: str, *, at: datetime = T0, **kw: object) -> DeploymentRecord:
    fields: dict[str, object] = {
        "id": dep_id,
        "environment": "staging",
        "service": "web",
        "version": "1.4.0",
        "strategy": "blue-green",
        "status": "running",
        "created_at": at,
        "updated_at": at,
    }
    fields.update(kw)
    return DeploymentRecord(**fields)  # type: ignore[arg-type]


# ---------------------------------------------------------------- deployments (DEP-4)
def test_deployment_round_trips_every_field_dep4(store: StateStore) -> None:
    rec = _dep(
        "dep-20261129-174501-7f3a",
        previous_version="1.3.2",
        task_definition="web:12",
        target_group="web-green",
        plan=[{"step": "RegisterTaskDefinition", "family": "web"}, {"step": "SwitchListener"}],
        owner="alice@ci",
    )
    store.create_deployment(rec)
    got = store.get_deployment(rec.id)
    assert got == rec
    assert got is not None
    assert got.created_at.tzinfo is not None


def test_update_deployment_changes_status_and_finish_time(store: StateStore) -> None:
    store.create_deployment(_dep("dep-20261129-174501-aaaa"))
    done = T0 + timedelta(minutes=7)
    store.update_deployment(
        "dep-20261129-174501-aaaa",
        status="succeeded",
        phase="cleanup",
        finished_at=done,
        updated_at=done,
        plan=[{"step": "Observe"}],
    )
    got = store.get_deployment("dep-20261129-174501-aaaa")
    assert got is not None
    assert (got.status, got.phase, got.finished_at, got.plan) == (
        "succeeded",
        "cleanup",
        done,
        [{"step": "Observe"}],
    )


def test_list_is_newest_first_and_filters(store: StateStore) -> None:
    for i, (env, svc, status) in enumerate(
        [
            ("staging", "web", "succeeded"),
            ("production", "web", "failed"),
            ("staging", "api", "succeeded"),
            ("staging", "web", "rolled_back"),
        ]
    ):
        store.create_deployment(
            _dep(
                f"dep-20261129-17450{i}-000{i}",
                at=T0 + timedelta(seconds=i),
                environment=env,
                service=svc,
                status=status,
            )
        )
    ids = [d.id[-4:] for d in store.list_deployments()]
    assert ids == ["0003", "0002", "0001", "0000"]
    assert [d.id[-4:] for d in store.list_deployments(environment="staging", service="web")] == [
        "0003",
        "0000",
    ]
    assert [d.id[-4:] for d in store.list_deployments(status=["failed", "rolled_back"])] == [
        "0003",
        "0001",
    ]
    assert len(store.list_deployments(limit=2)) == 2


def test_find_deployment_by_unique_prefix(store: StateStore) -> None:
    store.create_deployment(_dep("dep-20261129-174501-7f3a"))
    store.create_deployment(_dep("dep-20261129-174501-7f3b"))
    store.create_deployment(_dep("dep-20261130-090000-0001"))
    found = store.find_deployment("dep-20261130")
    assert found is not None
    assert found.id == "dep-20261130-090000-0001"
    exact = store.find_deployment("dep-20261129-174501-7f3a")
    assert exact is not None
    assert exact.id == "dep-20261129-174501-7f3a"
    assert store.find_deployment("dep-20261129-174501-7f3") is None  # ambiguous
    assert store.find_deployment("dep") is None  # too short to be a prefix
    assert store.find_deployment("dep-2099") is None
    assert store.find_deployment("dep_20261130") is None  # '_' is not a LIKE wildcard here
    assert store.find_deployment("dep-2026113%") is None


# ---------------------------------------------------------------- steps: intent and outcome
def test_step_intent_then_outcome_and_reopen_on_resume(store: StateStore) -> None:
    """A killed deploy resumes at the first unfinished step: re-recording the intent of a
    step re-opens it (status started, no finish time, no stale error) without duplicating it."""
    clock = VirtualClock(start=T0)
    dep = "dep-20261129-174501-5eed"
    store.create_deployment(_dep(dep))
    store.record_step_intent(
        dep, 1, "RegisterTaskDefinition", phase="prepare", params={"family": "web"}, now=clock.now()
    )
    clock.sleep(2)
    store.record_step_outcome(dep, 1, status="succeeded", result={"arn": "web:13"}, now=clock.now())
    store.record_step_intent(dep, 2, "WaitHealthy", phase="deploy", params={}, now=clock.now())
    clock.sleep(60)
    store.record_step_outcome(dep, 2, status="failed", error="2 of 4 unhealthy", now=clock.now())

    steps = store.steps_for(dep)
    assert [(s.seq, s.name, s.status) for s in steps] == [
        (1, "RegisterTaskDefinition", "succeeded"),
        (2, "WaitHealthy", "failed"),
    ]
    assert steps[0].params == {"family": "web"}
    assert steps[0].result == {"arn": "web:13"}
    assert steps[0].finished_at == T0 + timedelta(seconds=2)

    clock.sleep(5)
    store.record_step_intent(
        dep, 2, "WaitHealthy", phase="deploy", params={"retry": 1}, now=clock.now()
    )
    resumed = store.steps_for(dep)
    assert len(resumed) == 2
    assert resumed[1].status == "started"
    assert resumed[1].error == ""
    assert resumed[1].finished_at is None
    assert resumed[1].started_at == clock.now()
    assert resumed[1].params == {"retry": 1}


# ---------------------------------------------------------------- events and decisions
def test_events_filter_by_deployment_kind_and_cursor(store: StateStore) -> None:
    dep = "dep-20261129-174501-e001"
    first = store.add_event(
        EventRecord(
            ts=T0,
            kind="deploy.started",
            message="deploy 1.4.0",
            deployment_id=dep,
            environment="staging",
            service="web",
            data={"version": "1.4.0"},
        )
    )
    second = store.add_event(
        EventRecord(
            ts=T0, kind="step.failed", message="unhealthy", level="error", deployment_id=dep
        )
    )
    store.add_event(EventRecord(ts=T0, kind="deploy.started", message="other"))
    assert second > first > 0
    mine = store.events(deployment_id=dep)
    assert [e.kind for e in mine] == ["deploy.started", "step.failed"]
    assert mine[0].data == {"version": "1.4.0"}
    assert mine[0].ts == T0
    assert [e.message for e in store.events(kind="deploy.started")] == ["deploy 1.4.0", "other"]
    assert next(e.id for e in store.events(since_id=first)) == second


def test_decisions_keep_their_evidence_rb1(store: StateStore) -> None:
    """RB-1: each decision is stored with the series and thresholds that led to it."""
    evidence = {"threshold": 5.0, "window": 300, "series": [1.0, 6.2, 7.9], "baseline": 0.4}
    store.add_decision(
        DecisionRecord(
            ts=T0,
            rule="error_rate",
            verdict="breached",
            action="rollback",
            deployment_id="dep-x",
            evidence=evidence,
        )
    )
    store.add_decision(DecisionRecord(ts=T0, rule="p99", verdict="ok", action="none"))
    got = store.decisions(deployment_id="dep-x")
    assert [(d.rule, d.verdict, d.action, d.evidence) for d in got] == [
        ("error_rate", "breached", "rollback", evidence)
    ]
    assert len(store.decisions()) == 2


# ---------------------------------------------------------------- metric samples
def test_metric_samples_window_query_and_prune(store: StateStore) -> None:
    samples = [
        MetricSample(
            scope="staging/web/green",
            metric="error_rate",
            ts=1000.0 + 10 * i,
            value=float(i),
            count=100,
        )
        for i in range(10)
    ]
    samples.append(
        MetricSample(
            scope="staging/web/blue",
            metric="error_rate",
            ts=1000.0,
            value=99.0,
            sketch='{"bins": [1, 2]}',
        )
    )
    assert store.add_samples(samples) == 11
    assert store.add_samples([]) == 0
    window = store.samples("staging/web/green", "error_rate", 1020.0, 1060.0)
    assert [s.ts for s in window] == [1020.0, 1030.0, 1040.0, 1050.0]  # start <= ts < end
    assert window[0].value == 2.0
    assert window[0].count == 100
    blue = store.samples("staging/web/blue", "error_rate", 0, 2000)
    assert blue[0].sketch == '{"bins": [1, 2]}'
    assert store.prune_samples(before=1050.0) == 6  # 5 green + 1 blue
    assert [s.ts for s in store.samples("staging/web/green", "error_rate", 0, 5000)] == [
        1050.0,
        1060.0,
        1070.0,
        1080.0,
        1090.0,
    ]


# ---------------------------------------------------------------- audit
def test_audit_log_newest_first(store: StateStore) -> None:
    store.audit(AuditRecord(ts=T0, actor="alice", action="secret.rotate", target="jwt-secret"))
    store.audit(
        AuditRecord(
            ts=T0 + timedelta(seconds=1),
            actor="bob",
            action="lock.release",
            target="production/web",
            detail={"reason": "stale"},
        )
    )
    log = store.audit_log()
    assert [(a.actor, a.action) for a in log] == [
        ("bob", "lock.release"),
        ("alice", "secret.rotate"),
    ]
    assert log[0].detail == {"reason": "stale"}
    assert len(store.audit_log(limit=1)) == 1


# ---------------------------------------------------------------- jobs (DEP-4 deferred delete)
def test_jobs_scheduled_once_and_claimed_only_when_due_dep4(store: StateStore) -> None:
    """DEP-4: deleting the old target group 24 h later is a job; scheduling twice is a no-op."""
    due = T0 + timedelta(hours=24)
    assert store.schedule_job(
        kind="delete_target_group",
        dedup_key="tg:web-blue",
        due_at=due,
        payload={"target_group": "web-blue"},
    )
    assert not store.schedule_job(
        kind="delete_target_group",
        dedup_key="tg:web-blue",
        due_at=due,
        payload={"target_group": "web-blue"},
    )
    assert store.claim_due_jobs(now=T0 + timedelta(hours=23), worker="w1") == []
    claimed = store.claim_due_jobs(now=due, worker="w1")
    assert [(j.kind, j.payload, j.claimed_by, j.status) for j in claimed] == [
        ("delete_target_group", {"target_group": "web-blue"}, "w1", "claimed")
    ]
    assert store.claim_due_jobs(now=due, worker="w2") == []  # already claimed
    store.finish_job(claimed[0].id, status="done", result="deleted", now=due)
    done = store.jobs(status="done")
    assert [(j.dedup_key, j.result) for j in done] == [("tg:web-blue", "deleted")]


def test_two_workers_claim_each_job_exactly_once(open_store: Callable[[], StateStore]) -> None:
    """Two controllers polling the same queue at once: every job runs once, never twice."""
    setup = open_store()
    for i in range(40):
        setup.schedule_job(kind="noop", dedup_key=f"job-{i}", due_at=T0, payload={"i": i})
    workers = {"w1": open_store(), "w2": open_store()}
    got: dict[str, list[JobRecord]] = {"w1": [], "w2": []}
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            barrier.wait(timeout=10)
            for _ in range(100):  # bounded
                batch = workers[name].claim_due_jobs(now=T0, worker=name, limit=3)
                if not batch:
                    return
                got[name].extend(batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    ids1 = {j.id for j in got["w1"]}
    ids2 = {j.id for j in got["w2"]}
    assert ids1.isdisjoint(ids2)
    assert len(ids1) + len(ids2) == 40
    assert len(got["w1"]) + len(got["w2"]) == 40
    by_worker = {j.id: j.claimed_by for j in setup.jobs(status="claimed")}
    assert all(by_worker[j] == "w1" for j in ids1)
    assert all(by_worker[j] == "w2" for j in ids2)


# ---------------------------------------------------------------- migrations
def test_open_twice_is_idempotent_and_keeps_data(empty_url: str) -> None:
    first = StateStore.open(empty_url)
    try:
        assert first.current_revision() == HEAD_REVISION
        first.create_deployment(_dep("dep-20261129-174501-0001"))
    finally:
        first.close()
    second = StateStore.open(empty_url)
    try:
        assert second.current_revision() == HEAD_REVISION
        assert [d.id for d in second.list_deployments()] == ["dep-20261129-174501-0001"]
        second.migrate()  # explicit re-run is a no-op too
        assert second.count("operations") == 1
    finally:
        second.close()


# ---------------------------------------------------------------- locks
def test_second_holder_is_refused_with_owner_reason_and_age(store: StateStore) -> None:
    """One deploy at a time per (environment, service): the second learns who, why, how long."""
    store.acquire_lock(
        "production/web", owner="alice@ci-7", reason="deploy 1.4.0", now=T0, deployment_id="dep-1"
    )
    with pytest.raises(LockHeldError) as caught:
        store.acquire_lock(
            "production/web",
            owner="bob@laptop",
            reason="deploy 1.4.1",
            now=T0 + timedelta(seconds=95),
        )
    err = caught.value
    assert (err.owner, err.reason, round(err.age_seconds)) == ("alice@ci-7", "deploy 1.4.0", 95)
    assert "alice@ci-7" in str(err)
    assert "deploy 1.4.0" in str(err)
    assert "95s" in str(err)
    assert err.exit_code == 4
    assert "lock release production/web --force" in (err.hint or "")
    # another service's lock is independent
    store.acquire_lock("production/api", owner="bob@laptop", reason="deploy", now=T0)
    assert [lk.key for lk in store.list_locks()] == ["production/api", "production/web"]


def test_release_only_by_owner_then_free_again(store: StateStore) -> None:
    store.acquire_lock("staging/web", owner="alice", reason="deploy", now=T0)
    assert store.release_lock("staging/web", owner="mallory") is False
    assert store.get_lock("staging/web") is not None
    assert store.release_lock("staging/web", owner="alice") is True
    assert store.get_lock("staging/web") is None
    again = store.acquire_lock("staging/web", owner="bob", reason="deploy", now=T0)
    assert again.owner == "bob"


def test_transfer_lock_to_resuming_process(store: StateStore) -> None:
    store.acquire_lock("staging/web", owner="pid-1", reason="deploy", now=T0)
    store.transfer_lock("staging/web", new_owner="pid-2")
    held = store.get_lock("staging/web")
    assert held is not None
    assert held.owner == "pid-2"


def test_force_release_is_audited(store: StateStore) -> None:
    store.acquire_lock("production/web", owner="ci-7", reason="deploy 1.4.0", now=T0)
    was = store.force_release_lock(
        "production/web", actor="ops@host", reason="ci host died", now=T0 + timedelta(hours=2)
    )
    assert was.owner == "ci-7"
    assert store.get_lock("production/web") is None
    entry = store.audit_log()[0]
    assert (entry.actor, entry.action, entry.target) == (
        "ops@host",
        "lock.force_release",
        "production/web",
    )
    assert entry.detail == {"reason": "ci host died", "held_by": "ci-7", "held_for": "deploy 1.4.0"}
    with pytest.raises(ConfigError, match="no lock named"):
        store.force_release_lock("production/web", actor="ops", reason="x", now=T0)


def test_eight_racing_holders_exactly_one_wins(open_store: Callable[[], StateStore]) -> None:
    """Real concurrency: 8 threads, each with its own connection pool (like 8 processes),
    released by a barrier at the same instant. The database decides: one lock, 7 refusals
    that all name the winner."""
    stores = [open_store() for _ in range(8)]
    barrier = threading.Barrier(8)
    won: list[str] = []
    refused: list[LockHeldError] = []
    other: list[BaseException] = []
    guard = threading.Lock()

    def race(i: int) -> None:
        owner = f"worker-{i}"
        try:
            barrier.wait(timeout=10)
            stores[i].acquire_lock("production/web", owner=owner, reason=f"deploy by {i}", now=T0)
            with guard:
                won.append(owner)
        except LockHeldError as exc:
            with guard:
                refused.append(exc)
        except BaseException as exc:
            with guard:
                other.append(exc)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert other == []
    assert len(won) == 1
    assert len(refused) == 7
    assert {e.owner for e in refused} == set(won)
    held = stores[0].get_lock("production/web")
    assert held is not None
    assert held.owner == won[0]


def test_times_with_any_offset_keep_their_instant(store: StateStore) -> None:
    """An operator in Tokyo (+09:00) and one in UTC see the same instant on either backend;
    a due job is compared by instant, not by wall-clock digits."""
    jst = timezone(timedelta(hours=9))
    at_tokyo = datetime(2026, 11, 30, 2, 45, 1, tzinfo=jst)  # == T0 without microseconds
    store.audit(AuditRecord(ts=at_tokyo, actor="kenji", action="lock.release"))
    got = store.audit_log()[0].ts
    assert got == at_tokyo
    assert got.utcoffset() == timedelta(0)
    store.schedule_job(kind="noop", dedup_key="k", due_at=T0, payload={})  # 17:45:01Z
    # 02:00 +09:00 on the 30th is 17:00Z on the 29th: not due yet, though its digits are later
    assert store.claim_due_jobs(now=datetime(2026, 11, 30, 2, 0, tzinfo=jst), worker="w") == []
    due = store.claim_due_jobs(now=datetime(2026, 11, 30, 2, 46, tzinfo=jst), worker="w")
    assert [j.due_at for j in due] == [T0]


def _dead_process() -> Holder:
    """A process of this host that ran and exited (its pid and start time, as a holder)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    started = psutil.Process(proc.pid).create_time()
    proc.wait(timeout=30)
    return Holder(pid=proc.pid, host=socket.gethostname(), started_at=started)


def test_a_lock_whose_holder_died_says_so_and_points_to_resume_dep7(store: StateStore) -> None:
    """A deploy killed mid-way leaves its lock; the next one is told the holder is gone and
    that `deployops resume` finishes the interrupted deployment."""
    store.acquire_lock(
        "staging/web",
        owner="alice@ci-7:4242",
        reason="deploy web 1.4.0 (dep-20261129-084501-7f3a)",
        now=T0,
        deployment_id="dep-20261129-084501-7f3a",
        holder=_dead_process(),
    )
    held = store.get_lock("staging/web")
    assert held is not None and held.holder_host == socket.gethostname()
    assert store.lock_holder_alive(held) is False
    with pytest.raises(LockHeldError) as caught:
        store.acquire_lock("staging/web", owner="bob", reason="deploy", now=T0)
    err = caught.value
    assert err.holder_dead is True
    assert err.exit_code == 4
    assert "no longer running" in str(err)
    assert err.hint == (
        "`deployops resume dep-20261129-084501-7f3a` takes the lock over and finishes it"
    )
    # resume takes it over: this process becomes the holder
    store.transfer_lock("staging/web", new_owner="bob")
    mine = store.get_lock("staging/web")
    assert mine is not None and mine.owner == "bob" and mine.holder_pid == os.getpid()
    assert store.lock_holder_alive(mine) is True


def test_a_running_holder_a_reused_pid_and_another_host(store: StateStore) -> None:
    me = current_holder()
    store.acquire_lock("production/web", owner="me", reason="deploy", now=T0)
    held = store.get_lock("production/web")
    assert held is not None and held.holder_pid == me.pid
    assert store.lock_holder_alive(held) is True
    with pytest.raises(LockHeldError) as caught:
        store.acquire_lock("production/web", owner="bob", reason="deploy", now=T0)
    assert caught.value.holder_dead is False
    assert "lock release production/web --force" in (caught.value.hint or "")
    # the pid runs, but it is another process than the one that took the lock
    reused = Holder(pid=me.pid, host=me.host, started_at=(me.started_at or 0.0) - 3600)
    store.acquire_lock("production/api", owner="x", reason="deploy", now=T0, holder=reused)
    api = store.get_lock("production/api")
    assert api is not None and store.lock_holder_alive(api) is False
    # another host's process cannot be checked from here: it counts as running
    far = Holder(pid=1, host="build-host-elsewhere", started_at=0.0)
    store.acquire_lock("production/jobs", owner="y", reason="deploy", now=T0, holder=far)
    jobs = store.get_lock("production/jobs")
    assert jobs is not None and store.lock_holder_alive(jobs) is True
