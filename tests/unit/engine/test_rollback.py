"""Manual rollback (RB-3) on the in-memory platform: checks, dry run, redeploy, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployops.engine.deploy import DeployRequest
from deployops.engine.planning.rollback import plan_rollback, run_rollback
from deployops.errors import ConfigError
from tests.support.memory_rig import Rig, make_rig, write_project


def _snapshot(rig: Rig) -> tuple[object, ...]:
    compute = rig.deployer().ports.compute
    services = {n: compute.describe_service(n) for n in compute.list_services()}
    return (
        rig.prod(),
        {n: (s.desired, s.task_definition) for n, s in services.items() if s},
        [(d.id, d.status) for d in rig.store.list_deployments()],
        rig.store.count("steps"),
    )


def test_dry_run_shows_the_guides_checks_and_changes_nothing_rb3(rig: Rig) -> None:
    rig.deployer().deploy(DeployRequest(service="web", version="1.0.0"))
    second = rig.deployer().deploy(DeployRequest(service="web", version="1.1.0"))
    before = _snapshot(rig)
    rb = plan_rollback(rig.deployer(), second.id)
    assert _snapshot(rig) == before
    assert rb.to_version == "1.0.0"
    names = [c.name for c in rb.checks]
    assert names == ["previous version", "database compatibility", "configuration", "user impact"]
    impact = rb.checks[-1]
    assert impact.data["share_moving"] == 100
    assert rb.mode == "redeploy"  # blue was scaled to 0 after the stability window


def test_rollback_redeploys_previous_task_definition_and_links_records_rb3(rig: Rig) -> None:
    first = rig.deployer().deploy(DeployRequest(service="web", version="1.0.0"))
    second = rig.deployer().deploy(DeployRequest(service="web", version="1.1.0"))
    assert rig.prod() == "web-green"
    d = rig.deployer()
    done = run_rollback(d, plan_rollback(d, second.id), owner="ops@host:1")
    assert done.kind == "rollback"
    assert done.reverts == second.id
    assert done.status == "succeeded"
    assert rig.prod() == "web-blue"
    live = d.live_state("web")
    assert live.version == "1.0.0"
    assert live.task_definition == first.task_definition  # the same revision, not a new one


def test_rollback_across_irreversible_migration_needs_force_and_reason_rb3(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path)
    rig.project = write_project(
        tmp_path, migrations={"1.1.0": {"irreversible": True, "description": "drop column"}}
    )
    rig.deployer().deploy(DeployRequest(service="web", version="1.0.0"))
    second = rig.deployer().deploy(DeployRequest(service="web", version="1.1.0"))
    d = rig.deployer()
    rb = plan_rollback(d, second.id)
    assert [c.name for c in rb.blocked] == ["database compatibility"]
    with pytest.raises(ConfigError, match="irreversible"):
        run_rollback(d, rb, owner="ops@host:1")
    assert rig.prod() == "web-green"  # nothing changed
    done = run_rollback(d, rb, owner="ops@host:1", force=True, reason="column unused since 0.9")
    assert done.status == "succeeded"
    (audit,) = rig.store.audit_log()
    assert audit.action == "rollback.forced"
    assert audit.detail["reason"] == "column unused since 0.9"


def test_unknown_first_and_stale_deployments_are_refused(rig: Rig) -> None:
    first = rig.deployer().deploy(DeployRequest(service="web", version="1.0.0"))
    with pytest.raises(ConfigError, match="no deployment"):
        plan_rollback(rig.deployer(), "dep-nope")
    with pytest.raises(ConfigError, match="first deployment"):
        plan_rollback(rig.deployer(), first.id)
    second = rig.deployer().deploy(DeployRequest(service="web", version="1.1.0"))
    rig.deployer().deploy(DeployRequest(service="web", version="1.2.0"))
    with pytest.raises(ConfigError, match="no longer live"):
        plan_rollback(rig.deployer(), second.id)
