"""``aws.mode: ecs-native``: a deploy whose process dies mid-deployment is resumed and keeps
watching the same ECS service deployment; it never sends a second ``UpdateService`` (a second
deployment) nor answers the pause hook twice.

The deploy runs in this process with the engine's fault point (the one
``DEPLOYOPS_TEST_CRASH_AT`` arms for the crash matrix), which here raises an exception nothing
in the engine catches instead of SIGKILL: the simulator that plays ECS (moto_rig.py) lives in
this process and must outlive the "dead" deploy, as ECS outlives a killed deployops. The
simulated ECS carries on while nobody watches (the virtual clock moves on), then the resume is
built the way ``deployops resume`` builds it (``wiring.build_deployer`` over a new platform on
the same stand-in). Unlike SIGKILL, the exception lets the runner release its lock; the resume
takes a stale lock over the same way (owner not alive). What only a real account shows: ECS's
timing while deployops is away, and the pause hook's timeout if it stays away too long.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from deployops.drivers.aws import build_with, resources_for
from deployops.engine.deploy import Deployer, DeployRequest
from deployops.engine.events import null_reporter
from deployops.wiring import build_deployer, platform_ports
from tests.integration.aws.moto_rig import MotoServer
from tests.integration.aws.test_aws_engine_native import NativeRig

pytestmark = pytest.mark.integration


# ``make test`` samples the two points where a resume could repeat an ECS call; the full set
# runs with DEPLOYOPS_TEST_CRASH_MATRIX=full (as the crash matrix does).
FULL_ONLY = pytest.mark.skipif(
    os.environ.get("DEPLOYOPS_TEST_CRASH_MATRIX") != "full",
    reason="sampled: set DEPLOYOPS_TEST_CRASH_MATRIX=full for every point",
)


class Killed(BaseException):
    """The process died here (nothing in the engine handles a BaseException)."""


STEPS = (
    "RegisterTaskDefinition",
    "StartNativeDeployment",
    "NativeTestTraffic",
    "NativeProductionShift",
    "Observe",
    "WaitNativeDeployment",
)


def _killed_at(rig: NativeRig, step: str, where: str) -> Deployer:
    seq = STEPS.index(step)

    def crash(kind: str, at: int, point: str) -> None:
        if (kind, at, point) == ("deploy", seq, where):
            raise Killed(f"{step} {where}")

    return Deployer(
        project=rig.project,
        environment="staging",
        compute=rig.platform.compute,
        traffic=rig.platform.traffic,
        metrics=rig.platform.metrics,
        prober=rig.sim.prober(rig.world),
        store=rig.store,
        clock=rig.clock,
        crash_point=crash,
        extra_ports=platform_ports(rig.platform),
    )


def _resumer(rig: NativeRig) -> Deployer:
    """What ``deployops resume`` builds: the wiring over a platform built anew."""
    platform = build_with(
        rig.session,
        resources_for(rig.project, "staging"),
        environment="staging",
        clock=rig.clock,
        mode="ecs-native",
    )
    platform.prober = rig.sim.prober(rig.world)
    return build_deployer(
        rig.project,
        "staging",
        store=rig.store,
        reporter=null_reporter,
        clock=rig.clock,
        platform=platform,
    )


@pytest.mark.parametrize(
    ("step", "where"),
    [
        ("StartNativeDeployment", "before-outcome"),  # UpdateService sent, not recorded
        ("NativeTestTraffic", "before-outcome"),  # the hook answered, not recorded
        pytest.param("Observe", "before-act", marks=FULL_ONLY),  # during the bake
        pytest.param("WaitNativeDeployment", "before-act", marks=FULL_ONLY),
    ],
)
def test_a_killed_native_deploy_resumes_watching_the_same_ecs_deployment(
    aws: MotoServer, tmp_path: Path, step: str, where: str
) -> None:
    """Killed after UpdateService but before it was recorded: the resume finds the running
    deployment of the same revision; killed after the hook was answered: it sees production
    released and does not answer again; killed mid-bake or while waiting: it watches on."""
    rig = NativeRig(aws, tmp_path)
    rig.deploy("1.0.0")
    with pytest.raises(Killed):
        _killed_at(rig, step, where).deploy(DeployRequest(service="web", version="1.1.0"))
    (rec,) = [d for d in rig.store.list_deployments() if d.version == "1.1.0"]
    assert rec.status == "running"
    op = rig.store.get_operation(rec.id)
    assert op is not None
    started: Any = op.detail.get("native_deployment")
    assert started
    rig.clock.sleep(5.0)  # ECS carries on while deployops is away

    done = _resumer(rig).resume(rec.id, owner="ops@elsewhere:1", owner_alive=lambda _: False)

    assert done.status == "succeeded"
    assert rig.ecs_calls("UpdateService") == ["BLUE_GREEN", "BLUE_GREEN"]  # one per deploy
    assert rig.ecs_calls("ContinueServiceDeployment") == ["CONTINUE", "CONTINUE"]
    assert rig.ecs_calls("StopServiceDeployment") == []
    latest = list(rig.sim.deployments.values())[-1]
    assert (latest.arn, latest.status) == (started, "SUCCESSFUL")
    op = rig.store.get_operation(rec.id)
    assert op is not None and op.detail["native_deployment"] == started
    assert [s.status for s in rig.store.steps_for(rec.id)] == ["succeeded"] * len(STEPS)
    live = rig.deployer().live_state("web")
    assert (live.version, live.target_group) == ("1.1.0", "web-blue")
    assert rig.prod() == "web-blue"
