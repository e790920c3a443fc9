"""Canary deployments on the aws platform in ``aws.mode: services``: the same engine path as
local, with the production listener's weighted forward action (``ElbTraffic.set_weights``)
moving each step, against moto's server plus the task simulator, on a virtual clock.

At every step the test reads the listener's default action straight from the stand-in (not
through the driver) and checks its weights. What only a real account can confirm: that an
ALB really splits requests by those weights, and CloudWatch's per-target-group metrics of a
group taking a small share (the simulator reports each group's error rate from its version's
fault switches, whatever its share).
"""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
import yaml

from deployops.config.project import load_project
from deployops.engine.deploy import DeployRequest
from deployops.errors import RolledBackError
from deployops.store import EventRecord
from tests.integration.aws.moto_rig import REGION, MotoServer
from tests.integration.aws.test_aws_engine import Rig

pytestmark = pytest.mark.integration


class ShiftRig(Rig):
    """The engine rig with ``strategy: canary`` (10 % -> 50 % -> 100 %, 30 s bakes)."""

    def __init__(self, aws: MotoServer, tmp_path: Path) -> None:
        super().__init__(aws, tmp_path)
        path = self.project.path
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        doc["services"]["web"]["strategy"] = "canary"
        doc["services"]["web"]["canary"] = {"steps": [10, 50, 100], "bake": "30s"}
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        self.project = load_project(path)
        self.elb = boto3.client("elbv2", region_name=REGION)
        self.weights_at: list[tuple[str, str, dict[str, int]]] = []

    def prod_weights(self) -> dict[str, int]:
        """Target group -> weight of the production listener, read from the stand-in."""
        arn = self.world.resources.listeners["web-prod"]
        (action,) = self.elb.describe_listeners(ListenerArns=[arn])["Listeners"][0][
            "DefaultActions"
        ]
        names = {a: n for n, a in self.world.resources.target_groups.items()}
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
        if action.get("TargetGroupArn") and len(groups) <= 1:
            return {names[action["TargetGroupArn"]]: 100}
        return {names[g["TargetGroupArn"]]: int(g["Weight"]) for g in groups if g["Weight"]}

    def _record(self, ev: EventRecord) -> None:
        if ev.kind in ("step.succeeded", "step.failed"):
            self.weights_at.append((ev.kind, str(ev.data.get("step")), self.prod_weights()))


@pytest.fixture
def rig(aws: MotoServer, tmp_path: Path) -> ShiftRig:
    return ShiftRig(aws, tmp_path)


def test_canary_moves_the_alb_weights_step_by_step_and_back_on_failure(rig: ShiftRig) -> None:
    """Each stored step leaves the listener with its weights: blue alone until the smoke
    checks passed, 90/10 through the first step's bake, 50/50 through the second, green
    alone from the switch on; blue then goes to 0. Then a release failing 20 % of its
    requests fails its first bake (10 %): the listener forwards everything to the previous
    colour again, the 50 % step never happens, and that colour kept its 4 tasks."""
    assert rig.deployer().deploy(DeployRequest(service="web", version="1.0.0")).status == (
        "succeeded"
    )
    rig.weights_at.clear()
    rec = rig.deployer().deploy(DeployRequest(service="web", version="1.1.0"))
    assert rec.status == "succeeded"
    at = {(kind, step): w for kind, step, w in rig.weights_at if step != "Bake"}
    assert at[("step.succeeded", "SmokeTest")] == {"web-blue": 100}
    shifts = [w for kind, step, w in rig.weights_at if step in ("ShiftTraffic", "Bake")]
    assert shifts == [
        {"web-blue": 90, "web-green": 10},
        {"web-blue": 90, "web-green": 10},
        {"web-blue": 50, "web-green": 50},
        {"web-blue": 50, "web-green": 50},
    ]
    assert at[("step.succeeded", "SwitchListener")] == {"web-green": 100}
    assert at[("step.succeeded", "ScheduleDeleteTargetGroup")] == {"web-green": 100}
    assert rig.desired("shop-staging-blue") == 0
    assert rig.desired("shop-staging-green") == 4
    # every step's comparison passed, on the error rate (CloudWatch keeps no distribution)
    judged = rig.store.judgements(deployment_id=rec.id)
    assert [j.verdict for j in judged] == ["pass", "pass"]
    assert all("latency not compared" in j.detail["window"]["notes"][0] for j in judged)

    # now green serves production and blue (0 tasks) is the colour a canary goes to
    rig.weights_at.clear()
    with pytest.raises(RolledBackError):
        rig.deployer().deploy(DeployRequest(service="web", version="2.0.0"))
    (bad,) = [d for d in rig.store.list_deployments() if d.version == "2.0.0"]
    assert bad.status == "rolled_back"
    steps = [
        (kind, step, w) for kind, step, w in rig.weights_at if step in ("ShiftTraffic", "Bake")
    ]
    assert steps[0] == ("step.succeeded", "ShiftTraffic", {"web-green": 90, "web-blue": 10})
    assert steps[-1][:2] == ("step.failed", "Bake")
    assert rig.prod_weights() == {"web-green": 100}
    assert len([s for s in steps if s[1] == "ShiftTraffic"]) == 1
    assert rig.desired("shop-staging-green") == 4
