"""``aws.mode: ecs-native`` with ECS's CANARY and LINEAR strategies, through the same
``Deployer`` as local: the service's ``canary:`` / ``linear:`` settings become
``canaryConfiguration`` / ``linearConfiguration``; the pause hook holds production until the
smoke checks pass; deployops judges the new revision with its RB-1 rules while ECS moves
production step by step, and rolls back with ``StopServiceDeployment(ROLLBACK)``.

The simulator in ``moto_rig.py`` plays ECS's controller: at the production traffic shift it
gives the new revision each share on moto's real listener rule (weighted forward), one bake
apart. What only a real account shows: ECS's own step timing, that the ALB splits requests by
those weights (the simulated CloudWatch reports the new group's error rate whatever its share),
and CloudWatch's publication delay.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.validate import ParamValidator

from deployops.config.project import load_project
from deployops.domain.native import NATIVE_STRATEGY
from deployops.drivers.aws.ecs_native import NativeSettings, native_configuration
from deployops.engine.deploy import DeployRequest
from deployops.errors import ConfigError, RolledBackError
from tests.integration.aws.moto_rig import MotoServer
from tests.integration.aws.test_aws_engine_native import NativeRig

pytestmark = pytest.mark.integration


def _rig(aws: MotoServer, tmp_path: Path, **service: Any) -> NativeRig:
    rig = NativeRig(aws, tmp_path)
    path = tmp_path / "deployops.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["services"]["web"].update(service)
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    rig.project = load_project(path)
    return rig


def _deploy(rig: NativeRig, version: str, strategy: str) -> Any:
    return rig.deployer().deploy(DeployRequest(service="web", version=version, strategy=strategy))


def test_native_canary_gives_the_canary_its_share_then_all_of_production(
    aws: MotoServer, tmp_path: Path
) -> None:
    """ECS CANARY from ``canary: {steps: [10, 100], bake: 1m}``: canaryPercent 10 baked for a
    minute (judged by the rules meanwhile), then the rest; the bake after it is the stability
    window, as for BLUE_GREEN."""
    rig = _rig(aws, tmp_path, canary={"steps": [10, 100], "bake": "1m"})
    done = _deploy(rig, "1.0.0", "canary")
    assert (done.status, done.strategy) == ("succeeded", NATIVE_STRATEGY)
    assert rig.ecs_calls("UpdateService") == ["CANARY"]
    (request,) = [r for r in rig.sim.update_requests if "deploymentConfiguration" in r]
    config = request["deploymentConfiguration"]
    assert config["canaryConfiguration"] == {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 1}
    assert config["bakeTimeInMinutes"] == 1
    assert [d.weights for d in rig.sim.deployments.values()] == [[10.0, 100.0]]
    steps = [s.name for s in rig.store.steps_for(done.id)]
    assert steps == [
        "RegisterTaskDefinition",
        "StartNativeDeployment",
        "NativeTestTraffic",
        "Observe",  # while ECS bakes the canary
        "NativeProductionShift",
        "Observe",  # the bake after all of production moved
        "WaitNativeDeployment",
    ]
    assert rig.prod() == "web-green"


def test_native_linear_judged_during_its_steps_rolls_back_with_stop_service_deployment(
    aws: MotoServer, tmp_path: Path
) -> None:
    """RB-1/RB-2 on ECS LINEAR (steps of 25 % a minute apart): 20 % 5XX on the new revision
    breaks the error-rate rule while it has its first share; deployops stops the deployment
    with ROLLBACK before ECS gives it more, ECS puts all of production back on the old
    group, and the deploy ends "rolled back" with its rollback record."""
    rig = _rig(aws, tmp_path, linear={"step_percent": 25, "bake": "1m"})
    _deploy(rig, "1.0.0", "linear")
    rig.phases.clear()
    with pytest.raises(RolledBackError, match=r"error rate 20\.00%"):
        _deploy(rig, "2.0.0", "linear")
    (bad,) = [d for d in rig.store.list_deployments() if d.version == "2.0.0"]
    assert bad.status == "rolled_back"
    (request,) = [
        r
        for r in rig.sim.update_requests
        if str(r.get("taskDefinition", "")).endswith(bad.task_definition)
    ]
    linear = request["deploymentConfiguration"]["linearConfiguration"]
    assert linear == {"stepPercent": 25.0, "stepBakeTimeInMinutes": 1}
    last = list(rig.sim.deployments.values())[-1]
    assert last.weights == [25.0]  # judged and stopped on its first step
    assert rig.at("step.failed", "Observe") == ["web-green"]  # most of production still old
    assert rig.ecs_calls("StopServiceDeployment") == ["ROLLBACK"]
    assert rig.prod() == "web-green"
    (auto,) = [d for d in rig.store.list_deployments() if d.reverts == bad.id]
    assert auto.kind == "rollback"
    assert rig.deployer().live_state("web").version == "1.0.0"


def test_settings_ecs_cannot_follow_are_refused_before_anything_changes(
    aws: MotoServer, tmp_path: Path
) -> None:
    """ECS's canary has one canary step and its linear steps are at least 3 %: other
    settings are refused with the path and the fix; rolling has no ECS-native form."""
    rig = _rig(aws, tmp_path, canary={"steps": [5, 25, 100]}, linear={"step_percent": 2})
    with pytest.raises(ConfigError, match=r"one canary step") as canary:
        _deploy(rig, "1.0.0", "canary")
    assert canary.value.path == "services.web.canary.steps"
    assert "[5, 100]" in str(canary.value.hint)
    with pytest.raises(ConfigError, match="at least 3%") as linear:
        _deploy(rig, "1.0.0", "linear")
    assert linear.value.path == "services.web.linear.step_percent"
    with pytest.raises(ConfigError, match=r"cannot run in aws\.mode ecs-native"):
        _deploy(rig, "1.0.0", "rolling")
    assert rig.sim.update_requests == []


def test_canary_and_linear_configurations_match_the_ecs_model() -> None:
    """The UpdateService parameters of both strategies validate against botocore's ECS
    model (what Stubber checks requests with)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model("UpdateService").input_shape
    for strategy in ("CANARY", "LINEAR"):
        settings = NativeSettings(
            target_group_arn="arn:tg/blue",
            alternate_target_group_arn="arn:tg/green",
            production_listener_rule="arn:rule/prod",
            test_listener_rule="arn:rule/test",
            role_arn="arn:aws:iam::123456789012:role/ecs",
            container_name="app",
            container_port=3000,
            strategy=strategy,
            canary_percent=5,
            canary_bake_s=300,
            linear_step_percent=10,
            linear_step_bake_s=90,
            pause_timeout_s=600,
        )
        params = {"cluster": "shop", "service": "shop", **native_configuration(settings)}
        report = ParamValidator().validate(params, shape)
        assert not report.has_errors(), report.generate_report()
        config = params["deploymentConfiguration"]
        if strategy == "LINEAR":
            assert config["linearConfiguration"] == {
                "stepPercent": 10.0,
                "stepBakeTimeInMinutes": 2,  # whole minutes, never shorter
            }
        else:
            assert config["canaryConfiguration"]["canaryPercent"] == 5.0
