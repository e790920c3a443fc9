"""The watch after the switch on the aws platform (RB-1 after the stability window): the same
``AfterSwitchWatch`` and rollback code path as local, against moto's server plus the task
simulator (tests/integration/aws/moto_rig.py), on a virtual clock. A release whose 5XX start
two minutes after its window is rolled back by starting the previous task definition again on
the other ECS service and switching the ALB listener back.

What the stand-in cannot show: CloudWatch's publication delay and real 5XX counts (the
simulator answers one datapoint per query from the task definition's fault switches), Fargate
start-up and ALB health-check timing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from deployops.config.project import load_project
from deployops.engine.deploy import DeployRequest
from deployops.engine.watch_after import AfterSwitchWatch
from deployops.store.queries import watch_of
from tests.integration.aws.moto_rig import MotoServer
from tests.integration.aws.test_aws_engine import Rig

pytestmark = [
    pytest.mark.integration,
    # about 3 minutes on 2 cores; the same watch runs on the virtual clock in
    # tests/unit/engine/test_watch_after.py and on the local platform in tests/e2e
    pytest.mark.skipif(
        os.environ.get("DEPLOYOPS_TEST_FAULTS") != "full",
        reason="long: `make faults` runs it (DEPLOYOPS_TEST_FAULTS=full)",
    ),
]


def test_watch_rolls_back_a_release_degrading_after_its_window_on_ecs(
    aws: MotoServer, tmp_path: Path
) -> None:
    rig = Rig(aws, tmp_path)
    path = tmp_path / "deployops.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    web = doc["services"]["web"]
    # 30 s window, then 5XX from 150 s after the tasks were wanted (2 minutes after it)
    web["version_environment"]["1.3.0"] = {
        "FAULT_ERROR_RATE": "0.2",
        "FAULT_DEGRADE_AFTER_S": "150",
    }
    # one-period rules: the simulator answers the newest minute only
    web["rollback"] = {
        "watch_after_switch": "1h",
        "rules": {
            "error-rate": {"window": "60s"},
            "p99-latency": {"enabled": False},
            "memory": {"enabled": False},
            "cpu": {"enabled": False},
            "health-check-failures": {"enabled": False},
        },
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    rig.project = load_project(path)

    rig.deployer().deploy(DeployRequest(service="web", version="1.0.0"))
    live = rig.deployer().deploy(DeployRequest(service="web", version="1.3.0"))
    assert rig.prod_target_group() == "web-green"
    assert rig.desired("shop-staging-blue") == 0
    op = rig.store.get_operation(live.id)
    assert op is not None and watch_of(op)["state"] == "watching"

    watch = AfterSwitchWatch(
        store=rig.store,
        clock=rig.clock,
        environment="staging",
        worker="ctl@here:1",
        deployer=rig.deployer,
        spawn=lambda fn: fn(),
    )
    for _ in range(120):
        rig.clock.advance(10)
        watch.tick()
        op = rig.store.get_operation(live.id)
        assert op is not None
        if watch_of(op)["state"] not in ("watching", "rolling_back"):
            break
    assert watch_of(op)["state"] == "rolled_back", watch_of(op)
    (decision,) = rig.store.decisions(deployment_id=live.id)
    assert (decision.rule, decision.action) == ("error-rate", "rollback")
    (rb,) = [d for d in rig.store.list_deployments() if d.reverts == live.id]
    assert (rb.status, rb.strategy, rb.version) == ("succeeded", "redeploy", "1.0.0")
    assert rig.prod_target_group() == "web-blue"
    assert rig.desired("shop-staging-blue") == 4
    assert rig.desired("shop-staging-green") == 0
    report = tmp_path / ".deployops" / "reports" / f"{live.id}.md"
    assert "error-rate" in report.read_text(encoding="utf-8")
