"""``aws.mode: ecs-native`` through the same ``Deployer`` code path as local: ECS's own
BLUE_GREEN, held by a ``PAUSE`` hook at ``POST_TEST_TRAFFIC_SHIFT`` until deployops' smoke
checks pass, judged by the RB-1 rules during the bake, rolled back with
``StopServiceDeployment(ROLLBACK)``.

moto provisions the ALB, its listener rules, the task definitions and the one service; it has
no service deployments, so the simulator in ``moto_rig.py`` plays ECS's blue/green controller
(stages on the virtual clock, ``ModifyRule`` on moto's real rules at each traffic shift, the
pause hook, the bake, rollbacks), every response checked against the ECS model. At every phase
the test reads the production listener rule straight from moto (not through the driver).
What only a real account can confirm: how long ECS takes per stage, that ECS accepts the two
target groups trading places between deployments, that requests in flight survive its rule
changes, and CloudWatch's publication delay before the rules see an error rate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from deployops.clock import VirtualClock
from deployops.config.project import ProjectConfig, load_project
from deployops.domain.native import NATIVE_STRATEGY
from deployops.drivers.aws import build_with, resources_for
from deployops.engine.deploy import Deployer, DeployRequest
from deployops.engine.planning.rollback import plan_rollback, run_rollback
from deployops.errors import DeploymentError, RolledBackError, UnsupportedError
from deployops.store import EventRecord, StateStore
from deployops.wiring import platform_ports
from tests.integration.aws.moto_rig import (
    REGION,
    EcsSimulator,
    MotoServer,
    World,
    provision,
    session_for,
)

pytestmark = pytest.mark.integration

STACK = "shop-staging"
BEFORE_PRODUCTION = ("RegisterTaskDefinition", "StartNativeDeployment", "NativeTestTraffic")
AFTER_PRODUCTION = ("NativeProductionShift", "Observe", "WaitNativeDeployment")


class NativeRig:
    def __init__(self, aws: MotoServer, tmp_path: Path) -> None:
        self.session = session_for(aws)
        self.world: World = provision(self.session, stack=STACK, mode="ecs-native")
        outputs = self.world.write_outputs(tmp_path / "tf-outputs.json")
        self.project = _project(tmp_path, outputs)
        self.clock = VirtualClock()
        self.sim = EcsSimulator(
            session=self.session, clock=self.clock, cluster=STACK, native_services=(STACK,)
        )
        self.sim.install()
        self.store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
        self.platform = build_with(
            self.session,
            resources_for(self.project, "staging"),
            environment="staging",
            clock=self.clock,
            mode="ecs-native",
        )
        self._elb = boto3.client("elbv2", region_name=REGION)
        self.phases: list[tuple[str, str, str, str]] = []  # (event, step, prod, test)

    def _rule_tg(self, name: str) -> str:
        arn = self.world.resources.listener_rules[name]
        rule = self._elb.describe_rules(RuleArns=[arn])["Rules"][0]
        action = rule["Actions"][0]
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or [
            {"TargetGroupArn": action["TargetGroupArn"], "Weight": 1}
        ]
        tg = max(groups, key=lambda g: g.get("Weight", 1))["TargetGroupArn"]
        return next(n for n, a in self.world.resources.target_groups.items() if a == tg)

    def prod(self) -> str:
        """Where the production listener rule forwards, read from the stand-in itself."""
        return self._rule_tg("web-prod")

    def test(self) -> str:
        return self._rule_tg("web-test")

    def _record(self, ev: EventRecord) -> None:
        if ev.kind.startswith(("step.", "deploy.", "native.")):
            self.phases.append((ev.kind, str(ev.data.get("step")), self.prod(), self.test()))

    def deployer(self) -> Deployer:
        return Deployer(
            project=self.project,
            environment="staging",
            compute=self.platform.compute,
            traffic=self.platform.traffic,
            metrics=self.platform.metrics,
            prober=self.sim.prober(self.world),
            store=self.store,
            clock=self.clock,
            reporter=self._record,
            extra_ports=platform_ports(self.platform),
        )

    def at(self, event: str, step: str) -> list[str]:
        return [prod for kind, s, prod, _ in self.phases if kind == event and s == step]

    def deploy(self, version: str) -> Any:
        return self.deployer().deploy(DeployRequest(service="web", version=version))

    def ecs_calls(self, op: str) -> list[str]:
        return [detail for name, detail in self.sim.native_calls if name == op]


def _project(root: Path, outputs: Path) -> ProjectConfig:
    doc: dict[str, Any] = {
        "project": "shop",
        "environments": {
            "staging": {
                "platform": "aws",
                "aws": {"terraform_outputs": outputs.name, "mode": "ecs-native"},
            }
        },
        "services": {
            "web": {
                "port": 80,
                "test_port": 8080,
                "image": "repo/web:{version}",
                "task_family": STACK,
                "desired_count": 4,
                "environment": {"PORT": "3000"},
                "blue_green": {
                    "health_timeout": "60s",
                    "stability_window": "30s",
                    "sample_interval": "10s",
                },
                "version_environment": {
                    "2.0.0": {"FAULT_ERROR_RATE": "0.2"},
                    "5.0.0": {"FAULT_ERROR_RATE": "1"},
                    "6.6.6": {"FAULT_HEALTH_FAIL": "1"},
                },
            }
        },
    }
    path = root / "deployops.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return load_project(path)


@pytest.fixture
def rig(aws: MotoServer, tmp_path: Path) -> NativeRig:
    return NativeRig(aws, tmp_path)


def test_native_blue_green_holds_production_until_the_smoke_checks_pass(rig: NativeRig) -> None:
    """DEP-1..DEP-3 on ECS's BLUE_GREEN: ECS starts the new revision behind the idle group
    and shifts the test rule; the pause hook holds production on the old group until the
    smoke checks through the test listener pass (ContinueServiceDeployment CONTINUE); then ECS
    moves the production rule, deployops judges the bake and waits for SUCCESSFUL."""
    assert rig.prod() == "web-blue"
    first = rig.deploy("1.0.0")
    assert first.status == "succeeded"
    assert first.strategy == NATIVE_STRATEGY
    for step in BEFORE_PRODUCTION:
        assert rig.at("step.succeeded", step) == ["web-blue"], step
    # The smoke checks ran with the test rule on the new group, production still old.
    tested = [(p, t) for k, s, p, t in rig.phases if k == "native.released"]
    assert tested == [("web-blue", "web-green")]
    for step in AFTER_PRODUCTION:
        assert rig.at("step.succeeded", step) == ["web-green"], step
    assert rig.ecs_calls("UpdateService") == ["BLUE_GREEN"]
    assert rig.ecs_calls("ContinueServiceDeployment") == ["CONTINUE"]
    assert rig.ecs_calls("StopServiceDeployment") == []

    # The next release goes the other way: the groups trade places.
    rig.phases.clear()
    second = rig.deploy("1.1.0")
    assert second.status == "succeeded"
    assert rig.at("step.succeeded", "NativeTestTraffic") == ["web-green"]
    assert rig.at("step.succeeded", "NativeProductionShift") == ["web-blue"]
    live = rig.deployer().live_state("web")
    assert (live.version, live.target_group) == ("1.1.0", "web-blue")
    assert live.task_definition == second.task_definition


def test_a_broken_rule_during_the_bake_rolls_back_with_stop_service_deployment(
    rig: NativeRig,
) -> None:
    """RB-1/RB-2 on ecs-native: 20 % 5XX on the new revision (CloudWatch, simulated) while
    ECS bakes -> StopServiceDeployment(ROLLBACK); ECS moves the production rule back, the
    deploy ends "rolled back" (exit 3) with a rollback record and an incident report."""
    rig.deploy("1.0.0")
    rig.phases.clear()
    with pytest.raises(RolledBackError, match=r"error rate 20\.00%"):
        rig.deploy("2.0.0")
    (bad,) = [d for d in rig.store.list_deployments() if d.version == "2.0.0"]
    assert bad.status == "rolled_back"
    assert rig.at("step.succeeded", "NativeProductionShift") == ["web-blue"]
    assert rig.at("step.failed", "Observe") == ["web-blue"]  # judged while production was on it
    assert rig.ecs_calls("StopServiceDeployment") == ["ROLLBACK"]
    assert rig.prod() == "web-green"  # back on 1.0.0's group
    (auto,) = [d for d in rig.store.list_deployments() if d.reverts == bad.id]
    assert auto.kind == "rollback"
    live = rig.deployer().live_state("web")
    assert live.version == "1.0.0"
    assert list((rig.project.state_dir / "reports").glob("*.md"))


def test_a_failed_smoke_check_rolls_back_at_the_pause_hook(rig: NativeRig) -> None:
    """DEP-2/DEP-7: a version that answers 500 through the test listener never gets
    production: the hook is answered ROLLBACK, ECS takes the new revision away."""
    rig.deploy("1.0.0")
    rig.phases.clear()
    with pytest.raises(DeploymentError, match="smoke check"):
        rig.deploy("5.0.0")
    (bad,) = [d for d in rig.store.list_deployments() if d.version == "5.0.0"]
    assert bad.status == "failed"
    assert {prod for _, _, prod, _ in rig.phases} == {"web-green"}  # production never moved
    assert rig.ecs_calls("ContinueServiceDeployment") == ["CONTINUE", "ROLLBACK"]
    op = rig.store.get_operation(bad.id)
    assert op is not None
    dep = rig.platform.extras["native_deployments"].describe(op.detail["native_deployment"])
    assert dep.status == "ROLLBACK_SUCCESSFUL"
    assert rig.test() == "web-green"  # the test rule is back where it was before 5.0.0


def test_an_unhealthy_revision_is_rolled_back_by_ecs_itself(rig: NativeRig) -> None:
    """DEP-7: the new tasks never turn healthy; ECS's circuit breaker rolls back before any
    traffic shift, and deployops reports the deployment failed with ECS's reason."""
    with pytest.raises(DeploymentError, match="circuit breaker"):
        rig.deploy("6.6.6")
    assert {prod for _, _, prod, _ in rig.phases} == {"web-blue"}
    assert rig.at("step.failed", "NativeTestTraffic") == ["web-blue"]


def test_manual_rollback_is_a_new_ecs_deployment_of_the_previous_revision(
    rig: NativeRig,
) -> None:
    """RB-3 on ecs-native: the old revision is gone after the bake, so a rollback deploys the
    previous task definition again (the same revision) through ECS's blue/green."""
    first = rig.deploy("1.0.0")
    second = rig.deploy("1.1.0")
    assert rig.prod() == "web-blue"
    rig.phases.clear()
    d = rig.deployer()
    rb = plan_rollback(d, second.id)
    assert rb.mode == "redeploy"
    assert rb.plan.strategy == NATIVE_STRATEGY
    assert rb.plan.steps[0].kind == "UseTaskDefinition"
    done = run_rollback(d, rb, owner="ops@host:1")
    assert done.status == "succeeded"
    assert done.reverts == second.id
    assert rig.at("step.succeeded", "NativeTestTraffic") == ["web-blue"]
    assert rig.at("step.succeeded", "NativeProductionShift") == ["web-green"]
    live = rig.deployer().live_state("web")
    assert live.task_definition == first.task_definition


def test_deployops_never_switches_a_listener_ecs_owns(rig: NativeRig) -> None:
    """In ecs-native mode the production rule is ECS's: a listener switch is refused with
    the fix, and nothing moved."""
    with pytest.raises(UnsupportedError, match="ECS moves web-prod"):
        rig.platform.traffic.switch_listener("web-prod", "web-green")
    assert rig.prod() == "web-blue"


DEPLOYOPS = str(Path(sys.executable).parent / "deployops")


def test_the_cli_plans_ecs_native_through_the_real_wiring(aws: MotoServer, tmp_path: Path) -> None:
    """``deployops deploy --dry-run`` on an ecs-native stack: the installed CLI builds the aws
    platform from the Terraform outputs and plans ECS's blue/green (nothing changes)."""
    world = provision(session_for(aws), stack=STACK, mode="ecs-native")
    world.write_outputs(tmp_path / "tf-outputs.json")
    doc = {
        "project": "shop",
        "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
        "environments": {
            "staging": {
                "platform": "aws",
                "aws": {"terraform_outputs": "tf-outputs.json", "mode": "ecs-native"},
            }
        },
        "services": {"web": {"port": 80, "image": "repo/web:{version}", "task_family": STACK}},
    }
    config = tmp_path / "deployops.yaml"
    config.write_text(yaml.safe_dump(doc), encoding="utf-8")
    args = ["deploy", "-c", str(config), "-e", "staging", "--version", "1.0.0", "--dry-run"]
    done = subprocess.run(
        [DEPLOYOPS, *args, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    text = json.dumps(out)
    for step in ("StartNativeDeployment", "NativeTestTraffic", "NativeProductionShift"):
        assert step in text, step
    assert NATIVE_STRATEGY in text
    ecs = boto3.client("ecs", region_name=REGION)
    (svc,) = ecs.describe_services(cluster=STACK, services=[STACK])["services"]
    assert svc["taskDefinition"].endswith(f"{STACK}:1")  # nothing was deployed
