"""DEP-4 without ``deployops serve``: the previous colour's target group is deleted at its due
time by the next deploy of the service, under the service's lock; ``deployops cleanup`` runs the
same deletions on demand. (In-memory platform on a virtual clock: the local platform's HAProxy
backends are covered by the e2e tests.)"""

from __future__ import annotations

from deployops.domain.names import lock_key
from deployops.engine.cleanup import run_due_deletions, scheduled_deletions
from deployops.engine.deploy import DeployRequest
from tests.support.memory_rig import Rig


def _deploy(rig: Rig, version: str) -> str:
    return rig.deployer().deploy(DeployRequest(service="web", version=version, owner="ci@h:1")).id


def test_the_next_deploy_deletes_a_target_group_that_is_due(rig: Rig) -> None:
    _deploy(rig, "1.0.0")
    second = _deploy(rig, "1.1.0")
    (job,) = scheduled_deletions(rig.store, environment="staging", service="web")
    assert job.payload["target_group"] == "web-blue" and "web-blue" in rig.cloud.target_groups

    # One hour later the group is kept: a rollback may still flip to it.
    rig.clock.advance(3600)
    assert (
        run_due_deletions(rig.deployer().env, environment="staging", service="web", owner="ci@h:1")
        == []
    )
    assert "web-blue" in rig.cloud.target_groups

    # A day later the next deploy deletes it before it starts.
    rig.clock.advance(24 * 3600)
    third = _deploy(rig, "1.2.0")
    (done,) = rig.store.jobs(status="done")
    assert done.id == job.id and done.result == "deleted target group web-blue"
    kinds = [(e.kind, e.deployment_id) for e in rig.store.events()]
    deleted_at = kinds.index(("job.done", second))
    assert deleted_at < kinds.index(("deploy.started", third))
    # The third deploy went to blue on a freshly created group, and scheduled green's deletion.
    assert rig.prod() == "web-blue"
    (next_job,) = scheduled_deletions(rig.store, environment="staging", service="web")
    assert next_job.payload["target_group"] == "web-green"


def test_a_due_deletion_waits_while_another_operation_holds_the_lock(rig: Rig) -> None:
    _deploy(rig, "1.0.0")
    _deploy(rig, "1.1.0")
    (job,) = rig.store.jobs(status="pending")
    rig.clock.advance(25 * 3600)
    rig.store.acquire_lock(
        lock_key("staging", "web"), owner="alice@ci:7", reason="deploy", now=rig.clock.now()
    )
    env = rig.deployer().env
    ((_, outcome),) = run_due_deletions(env, environment="staging", service="web", owner="me@h:2")
    assert outcome.status == "locked" and "alice@ci:7" in outcome.result
    assert "web-blue" in rig.cloud.target_groups
    assert [j.id for j in rig.store.jobs(status="pending")] == [job.id]  # runs later
    rig.store.release_lock(lock_key("staging", "web"), owner="alice@ci:7")
    ((_, outcome),) = run_due_deletions(env, environment="staging", service="web", owner="me@h:2")
    assert outcome.status == "done" and "web-blue" not in rig.cloud.target_groups
    assert rig.store.get_lock(lock_key("staging", "web")) is None


def test_a_group_that_serves_again_is_not_deleted(rig: Rig) -> None:
    """blue is due for deletion, but a deploy made blue live again meanwhile."""
    _deploy(rig, "1.0.0")
    _deploy(rig, "1.1.0")  # schedules web-blue
    rig.clock.advance(3600)
    _deploy(rig, "1.2.0")  # back on web-blue before its deletion was due
    rig.clock.advance(24 * 3600)
    outcomes = run_due_deletions(
        rig.deployer().env, environment="staging", service="web", owner="me@h:2"
    )
    by_group = {job.payload["target_group"]: o for job, o in outcomes}
    assert by_group["web-blue"].status == "skipped"
    assert "forwards traffic to web-blue" in by_group["web-blue"].result
    assert rig.prod() == "web-blue" and "web-blue" in rig.cloud.target_groups
