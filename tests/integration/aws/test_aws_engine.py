"""The deploy engine on the aws platform: the same ``Deployer`` code path as local, against
moto's server plus the task simulator (tests/integration/aws/moto_rig.py), on a virtual clock.

At every phase the test reads the production listener's default action straight from the
stand-in (not through the driver) and checks which target group it forwards to. What only a
real account can confirm: Fargate start-up and ALB health-check timing, that in-flight
requests survive ``ModifyListener``, and CloudWatch's publication delay before the rules see
an error rate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from deployops.clock import VirtualClock
from deployops.config.project import ProjectConfig, load_project
from deployops.drivers.aws import build_with, resources_for
from deployops.engine.deploy import Deployer, DeployRequest
from deployops.engine.planning.rollback import plan_rollback, run_rollback
from deployops.errors import DeploymentError, RolledBackError
from deployops.store import EventRecord, StateStore
from tests.integration.aws.moto_rig import (
    REGION,
    EcsSimulator,
    MotoServer,
    World,
    provision,
    session_for,
)

pytestmark = pytest.mark.integration


class Rig:
    def __init__(self, aws: MotoServer, tmp_path: Path) -> None:
        self.session = session_for(aws)
        self.world: World = provision(self.session)
        outputs = self.world.write_outputs(tmp_path / "tf-outputs.json")
        self.project = _project(tmp_path, outputs)
        self.clock = VirtualClock()
        self.sim = EcsSimulator(session=self.session, clock=self.clock, cluster="shop-staging")
        self.sim.install()
        self.store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
        self.platform = build_with(
            self.session,
            resources_for(self.project, "staging"),
            environment="staging",
            clock=self.clock,
        )
        self._elb = boto3.client("elbv2", region_name=REGION)
        self.phases: list[tuple[str, str, str]] = []  # (event, step, prod forwards to)

    def prod_target_group(self) -> str:
        """The production listener's default action, read from the stand-in itself."""
        arn = self.world.resources.listeners["web-prod"]
        action = self._elb.describe_listeners(ListenerArns=[arn])["Listeners"][0]["DefaultActions"][
            0
        ]
        tg = action["TargetGroupArn"]
        return next(n for n, a in self.world.resources.target_groups.items() if a == tg)

    def _record(self, ev: EventRecord) -> None:
        if ev.kind.startswith(("step.", "deployment.", "traffic.")):
            self.phases.append((ev.kind, str(ev.data.get("step")), self.prod_target_group()))

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
        )

    def at(self, event: str, step: str) -> list[str]:
        return [tg for kind, s, tg in self.phases if kind == event and s == step]

    def desired(self, ecs_name: str) -> int:
        ecs = boto3.client("ecs", region_name=REGION)
        svc = ecs.describe_services(cluster="shop-staging", services=[ecs_name])["services"]
        return int(svc[0]["desiredCount"]) if svc else -1


def _project(root: Path, outputs: Path) -> ProjectConfig:
    doc: dict[str, Any] = {
        "project": "shop",
        "environments": {
            "staging": {"platform": "aws", "aws": {"terraform_outputs": outputs.name}}
        },
        "services": {
            "web": {
                "port": 80,
                "test_port": 8080,
                "image": "repo/web:{version}",
                "task_family": "shop-staging",
                "desired_count": 4,
                "environment": {"PORT": "3000"},
                "blue_green": {
                    "health_timeout": "60s",
                    "stability_window": "30s",
                    "sample_interval": "10s",
                },
                "version_environment": {
                    "2.0.0": {"FAULT_ERROR_RATE": "0.2"},
                    "6.6.6": {"FAULT_HEALTH_FAIL": "1"},
                },
            }
        },
    }
    path = root / "deployops.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return load_project(path)


@pytest.fixture
def rig(aws: MotoServer, tmp_path: Path) -> Rig:
    return Rig(aws, tmp_path)


def test_blue_green_deploy_switches_the_listener_only_after_green_is_healthy(rig: Rig) -> None:
    """DEP-1..DEP-4 on ECS + ALB: green starts at 4, waits on target health, smoke-checks
    through the test listener, then the production listener moves; blue goes to 0 and its
    group is scheduled for deletion after 24 h."""
    first = rig.deployer().deploy(DeployRequest(service="web", version="1.0.0"))
    assert first.status == "succeeded"
    assert rig.prod_target_group() == "web-blue"
    rig.phases.clear()

    second = rig.deployer().deploy(DeployRequest(service="web", version="1.1.0"))
    assert second.status == "succeeded"
    # Production stays on blue through every phase before the switch ...
    for step in (
        "RegisterTaskDefinition",
        "CreateTargetGroup",
        "StartService",
        "WaitHealthy",
        "SmokeTest",
    ):
        assert rig.at("step.succeeded", step) == ["web-blue"], step
    assert rig.at("step.started", "SwitchListener") == ["web-blue"]
    # ... and on green from the switch on.
    for step in (
        "SwitchListener",
        "CheckTrafficMoved",
        "Observe",
        "ScaleService",
        "ScheduleDeleteTargetGroup",
    ):
        assert rig.at("step.succeeded", step) == ["web-green"], step
    assert rig.desired("shop-staging-green") == 4
    assert rig.desired("shop-staging-blue") == 0
    live = rig.deployer().live_state("web")
    assert (live.version, live.target_group) == ("1.1.0", "web-green")
    assert "ModifyListener" not in rig.sim.calls  # the simulator never answers writes


def test_error_rate_after_the_switch_rolls_back_automatically(rig: Rig) -> None:
    """RB-1/RB-2: 20 % 5XX on the new colour (CloudWatch, simulated) flips the listener back
    to the previous colour within one sample interval; exit status "rolled back"."""
    rig.deployer().deploy(DeployRequest(service="web", version="1.0.0"))
    rig.phases.clear()
    with pytest.raises(RolledBackError, match=r"error rate 20\.00%"):
        rig.deployer().deploy(DeployRequest(service="web", version="2.0.0"))
    (bad,) = [d for d in rig.store.list_deployments() if d.version == "2.0.0"]
    assert bad.status == "rolled_back"
    assert rig.at("step.succeeded", "SwitchListener") == ["web-green"]
    assert rig.at("step.failed", "Observe") == ["web-green"]  # judged while on green
    assert rig.prod_target_group() == "web-blue"
    assert rig.desired("shop-staging-blue") == 4  # blue kept running: a flip, not a redeploy


def test_unhealthy_green_never_receives_production_traffic(rig: Rig) -> None:
    """DEP-7: a version whose targets stay unhealthy stops at WaitHealthy; the listener never
    moved."""
    rig.deployer().deploy(DeployRequest(service="web", version="1.0.0"))
    rig.phases.clear()
    with pytest.raises(DeploymentError, match="did not turn healthy"):
        rig.deployer().deploy(DeployRequest(service="web", version="6.6.6"))
    (bad,) = [d for d in rig.store.list_deployments() if d.version == "6.6.6"]
    assert bad.status == "failed"
    assert {tg for _, _, tg in rig.phases} == {"web-blue"}
    assert rig.at("step.failed", "WaitHealthy") == ["web-blue"]


def test_manual_rollback_redeploys_the_previous_revision(rig: Rig) -> None:
    """RB-3 on aws: after blue was scaled to 0, a rollback starts the previous task
    definition again (the same revision: nothing was deregistered) and switches back."""
    first = rig.deployer().deploy(DeployRequest(service="web", version="1.0.0"))
    second = rig.deployer().deploy(DeployRequest(service="web", version="1.1.0"))
    assert rig.prod_target_group() == "web-green"
    rig.phases.clear()
    d = rig.deployer()
    rb = plan_rollback(d, second.id)
    assert rb.mode == "redeploy"
    done = run_rollback(d, rb, owner="ops@host:1")
    assert done.status == "succeeded"
    assert done.reverts == second.id
    assert rig.at("step.succeeded", "WaitHealthy") == ["web-green"]
    assert rig.at("step.succeeded", "SwitchListener") == ["web-blue"]
    assert rig.prod_target_group() == "web-blue"
    live = rig.deployer().live_state("web")
    assert live.task_definition == first.task_definition
