"""Plans carry their settings (DESIGN.md "An operation carries its settings"): a deploy killed
after its switch and resumed after someone edited the rollback rules in deployops.yaml is
judged by the rules it started with; the edit applies to the next deploy. (In-memory platform
on a virtual clock; tests/e2e/test_resume_e2e.py kills a real process.)"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from deployops.config.project import load_project
from deployops.engine.deploy import DeployRequest
from deployops.errors import RolledBackError
from deployops.store import EventRecord
from tests.support.rules_rig import deploy, make_rules_rig, rules_deployer


class Killed(BaseException):
    """kill -9 right after a step: nothing after it runs."""


def _disable_error_rate_rule(root: Path) -> None:
    path = root / "deployops.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["services"]["web"]["rollback"] = {"rules": {"error-rate": {"enabled": False}}}
    path.write_text(yaml.safe_dump(doc))


def test_resume_after_the_switch_is_judged_by_the_rules_the_deploy_started_with(
    tmp_path: Path,
) -> None:
    rig = make_rules_rig(tmp_path)
    deploy(rig, "1.0.0")

    def kill_after_switch(event: EventRecord) -> None:
        if event.kind == "step.succeeded" and event.data.get("step") == "SwitchListener":
            raise Killed

    first = rules_deployer(rig)
    first.reporter = kill_after_switch
    with pytest.raises(Killed):
        first.deploy(DeployRequest(service="web", version="2.0.0", owner="ci@host:1"))
    (running,) = rig.store.list_deployments(status=["running"])
    assert rig.prod() == "web-green"  # killed with 2.0.0 (20 % errors) live

    # Someone turns the error-rate rule off while the deploy is down.
    _disable_error_rate_rule(tmp_path)
    rig.project = load_project(tmp_path / "deployops.yaml")
    frozen = rig.store.get_operation(running.id)
    assert frozen is not None
    assert frozen.plan["settings"]["rollback"]["rules"] == {}  # the defaults, error-rate on

    with pytest.raises(RolledBackError):
        rules_deployer(rig).resume(running.id, owner="ops@host:2", owner_alive=lambda _o: False)
    assert rig.prod() == "web-blue"
    decisions = rig.store.decisions(deployment_id=running.id)
    assert [(d.rule, d.action) for d in decisions if d.action == "rollback"] == [
        ("error-rate", "rollback")
    ]
    assert rig.store.require_deployment(running.id).status == "rolled_back"

    # The edited rules judge the next deploy: the same 2.0.0 now goes live.
    again = deploy(rig, "2.0.0")
    assert again.status == "succeeded" and rig.prod() == "web-green"
    op = rig.store.get_operation(again.id)
    assert op is not None
    assert op.plan["settings"]["rollback"]["rules"]["error-rate"]["enabled"] is False


def test_the_incident_report_reads_the_reports_folder_frozen_into_the_plan(
    tmp_path: Path,
) -> None:
    rig = make_rules_rig(tmp_path)
    deploy(rig, "1.0.0")
    with pytest.raises(RolledBackError):
        deploy(rig, "2.0.0")
    (bad,) = rig.store.list_deployments(status=["rolled_back"])
    op = rig.store.get_operation(bad.id)
    assert op is not None
    folder = Path(op.plan["settings"]["reports_dir"])
    assert (folder / f"{bad.id}.md").exists()


def test_a_plan_the_platform_cannot_run_is_refused_naming_the_capability(
    tmp_path: Path,
) -> None:
    """The ports promise it: capabilities a driver lacks are declared, and the plan is
    refused when it is made (exit 2), before anything changes."""
    from deployops.drivers.memory import MemoryCompute
    from deployops.errors import EXIT_USAGE, UnsupportedError

    class NoRollingCompute(MemoryCompute):
        capabilities = frozenset({"task_definitions", "services"})

    rig = make_rules_rig(tmp_path)
    deploy(rig, "1.0.0")
    d = rules_deployer(rig)
    d.ports = d.planner.ports = replace(d.ports, compute=NoRollingCompute(cloud=rig.cloud))
    before = rig.store.list_deployments()
    with pytest.raises(UnsupportedError) as err:
        d.deploy(DeployRequest(service="web", version="1.1.0", strategy="rolling"))
    assert err.value.exit_code == EXIT_USAGE
    assert "'rolling_update'" in err.value.message and "memory compute driver" in err.value.message
    assert rig.store.list_deployments() == before  # nothing was started
    assert [e.kind for e in rig.store.events()][-1] == "deploy.refused"
