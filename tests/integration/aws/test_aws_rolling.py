"""Rolling deploys on ECS with the RB-1 rules armed as CloudWatch alarms (``aws.mode:
services``, strategy ``rolling``), through the same ``Deployer`` as local, on moto's server
plus the simulator (tests/integration/aws/moto_rig.py) on a virtual clock.

moto stores the alarms deployops puts (read back here) but drops ``deploymentConfiguration``
and has no service deployments: the simulator plays ECS's rolling controller from the
``UpdateService`` request as the client sent it (validated against the ECS model), reading the
alarms' state from moto. moto never evaluates an alarm either, so the test plays CloudWatch:
it sets the error-rate alarm to ``ALARM`` while the bad version's tasks run. What only a real
account shows: CloudWatch evaluating the metric math (the minimum request count, the
health-check ratio) on real ALB data, the bake time ECS computes from the alarms, and ECS's
own timing of the rollback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from deployops.clock import VirtualClock
from deployops.config.project import ProjectConfig, load_project
from deployops.drivers.aws import build_with, resources_for
from deployops.engine.deploy import Deployer, DeployRequest
from deployops.errors import RolledBackError
from deployops.store import StateStore
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

ARMED = (
    "shop-staging-blue-rollback-error-rate",
    "shop-staging-blue-rollback-p99-latency",
    "shop-staging-blue-rollback-memory",
    "shop-staging-blue-rollback-health-check-failures",
)


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
        self.cw = boto3.client("cloudwatch", region_name=REGION)
        self.ecs = boto3.client("ecs", region_name=REGION)

    def deployer(self, crash_point: Callable[[str, int, str], None] | None = None) -> Deployer:
        return Deployer(
            project=self.project,
            environment="staging",
            compute=self.platform.compute,
            traffic=self.platform.traffic,
            metrics=self.platform.metrics,
            prober=self.sim.prober(self.world),
            store=self.store,
            clock=self.clock,
            extra_ports=platform_ports(self.platform),
            crash_point=crash_point,
        )

    def deploy(self, version: str) -> Any:
        return self.deployer().deploy(
            DeployRequest(service="web", version=version, strategy="rolling")
        )

    def service_task_definition(self) -> str:
        svc = self.ecs.describe_services(cluster="shop-staging", services=["shop-staging-blue"])
        return str(svc["services"][0]["taskDefinition"]).rsplit("/", 1)[-1]

    def updates_to(self, revision: str) -> list[dict[str, Any]]:
        return [
            r
            for r in self.sim.update_requests
            if str(r.get("taskDefinition", "")).endswith(revision)
        ]


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
                "desired_count": 2,
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


def test_rolling_update_arms_the_rollback_rules_as_alarms_ecs_watches(rig: Rig) -> None:
    """IAC-4 + RB-1: the rules that roll back become CloudWatch alarms on the service's own
    target group and ECS service (p99 over its 10-minute escalation, memory over its window
    plus the scale-out grace; CPU only scales out and is left to deployops), and the
    UpdateService request names them in deploymentConfiguration.alarms next to the circuit
    breaker. Deploying again puts nothing new (the alarms already match)."""
    rig.deploy("1.0.0")  # first deploy: the service starts
    done = rig.deploy("1.1.0")
    assert done.status == "succeeded"
    alarms = {a["AlarmName"]: a for a in rig.cw.describe_alarms()["MetricAlarms"]}
    assert set(alarms) == set(ARMED)
    p99 = alarms["shop-staging-blue-rollback-p99-latency"]
    assert (p99["EvaluationPeriods"], p99["DatapointsToAlarm"], p99["Threshold"]) == (10, 10, 1.0)
    memory = alarms["shop-staging-blue-rollback-memory"]
    assert memory["EvaluationPeriods"] == 7
    assert {d["Value"] for d in memory["Dimensions"]} == {"shop-staging", "shop-staging-blue"}
    rate = alarms["shop-staging-blue-rollback-error-rate"]
    expression = next(m["Expression"] for m in rate["Metrics"] if m.get("Expression"))
    assert expression.startswith("IF(") and ">= 20" in expression  # quiet periods never breach
    (update,) = rig.updates_to(done.task_definition)
    config = update["deploymentConfiguration"]
    assert config["alarms"] == {"alarmNames": list(ARMED), "enable": True, "rollback": True}
    assert config["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert (config["maximumPercent"], config["minimumHealthyPercent"]) == (200, 100)
    steps = [s.name for s in rig.store.steps_for(done.id)]
    assert steps == ["RegisterTaskDefinition", "RollingUpdate", "Observe"]

    before = {a["AlarmName"]: a["AlarmConfigurationUpdatedTimestamp"] for a in alarms.values()}
    rig.deploy("1.2.0")
    after = {
        a["AlarmName"]: a["AlarmConfigurationUpdatedTimestamp"]
        for a in rig.cw.describe_alarms()["MetricAlarms"]
    }
    assert after == before


def test_an_armed_alarm_has_ecs_roll_back_and_deployops_reports_it(rig: Rig) -> None:
    """RB-1/RB-2 on ECS rolling: the error-rate alarm goes into ALARM while 2.0.0 rolls out;
    ECS fails the deployment and returns the service to 1.1.0 by itself. deployops reports an
    automatic rollback (exit status "rolled back") with a decision naming the alarm and the
    rule, records the rollback operation, and never sends an UpdateService of its own over
    ECS's rollback."""
    rig.deploy("1.0.0")
    good = rig.deploy("1.1.0")

    def play_cloudwatch(sim: EcsSimulator, d: Any) -> None:
        running_s = sim.clock.monotonic() - d.since
        if sim._task_env(d.target_td).get("FAULT_ERROR_RATE") and running_s >= 5:
            rig.cw.set_alarm_state(
                AlarmName="shop-staging-blue-rollback-error-rate",
                StateValue="ALARM",
                StateReason="Threshold Crossed: 5 datapoints were greater than 5.0",
            )

    rig.sim.on_rollout = play_cloudwatch
    with pytest.raises(RolledBackError, match="error-rate"):
        rig.deploy("2.0.0")
    (bad,) = [d for d in rig.store.list_deployments() if d.version == "2.0.0"]
    assert bad.status == "rolled_back"
    assert rig.service_task_definition() == good.task_definition
    assert len(rig.updates_to(bad.task_definition)) == 1  # ours; the rollback was ECS's
    (decision,) = [d for d in rig.store.decisions(deployment_id=bad.id) if d.action == "rollback"]
    assert decision.rule == "error-rate"
    assert decision.evidence["by"] == "platform"
    assert decision.evidence["rollout"]["triggered_alarms"] == [
        "shop-staging-blue-rollback-error-rate"
    ]
    assert decision.evidence["alarms"]["shop-staging-blue-rollback-error-rate"]["triggered"]
    assert decision.evidence["triggered"] == "shop-staging-blue-rollback-error-rate"
    (report,) = (rig.project.state_dir / "reports").glob(f"{bad.id}*.md")
    assert "shop-staging-blue-rollback-error-rate" in report.read_text(encoding="utf-8")
    rollbacks = [
        op
        for op in rig.store.list_operations(kinds=["rollback"])
        if op.reverts == bad.id and op.owner == "deployops (automatic)"
    ]
    assert [op.detail["strategy"] for op in rollbacks] == ["platform-rollback"]


class Killed(BaseException):
    """The process died here (nothing in the engine handles a BaseException)."""


def test_a_killed_rolling_deploy_resumes_on_the_same_ecs_deployment(rig: Rig) -> None:
    """Killed after UpdateService started the rollout, before the step's outcome was stored
    (the engine's fault point, raising instead of SIGKILL because the simulated ECS lives in
    this process): the resume watches the deployment kept in the operation's detail and
    sends no second UpdateService."""
    rig.deploy("1.0.0")

    def crash(kind: str, seq: int, where: str) -> None:
        if (kind, seq, where) == ("deploy", 1, "before-outcome"):  # RollingUpdate
            raise Killed

    with pytest.raises(Killed):
        rig.deployer(crash).deploy(
            DeployRequest(service="web", version="1.1.0", strategy="rolling")
        )
    (rec,) = [d for d in rig.store.list_deployments() if d.version == "1.1.0"]
    op = rig.store.get_operation(rec.id)
    assert op is not None and op.status == "running"
    started = op.detail["rollout"]
    done = rig.deployer().resume(rec.id, owner="ops@elsewhere:1", owner_alive=lambda _: False)
    assert done.status == "succeeded"
    assert len(rig.updates_to(done.task_definition)) == 1
    assert [d.arn for d in rig.sim.rollings.values()] == [started]
    assert rig.service_task_definition() == done.task_definition


def test_new_tasks_that_never_turn_healthy_trip_the_circuit_breaker(rig: Rig) -> None:
    """DEP-7 on ECS rolling: the circuit breaker (on, with rollback) rolls the service back by
    itself; deployops reports it as an automatic rollback decided by the breaker, and the old
    revision serves throughout."""
    rig.deploy("1.0.0")
    good = rig.deploy("1.1.0")
    with pytest.raises(RolledBackError, match="circuit breaker"):
        rig.deploy("6.6.6")
    (bad,) = [d for d in rig.store.list_deployments() if d.version == "6.6.6"]
    assert bad.status == "rolled_back"
    assert rig.service_task_definition() == good.task_definition
    (decision,) = [d for d in rig.store.decisions(deployment_id=bad.id) if d.action == "rollback"]
    assert decision.rule == "circuit-breaker"
    assert decision.evidence["rollout"]["circuit_breaker"] is True
