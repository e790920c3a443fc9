"""A secret rotation on the aws platform (SEC-1, SEC-3): Secrets Manager's staging labels move
as AWS moves them, and since an ECS task reads its secrets only when it starts, the rotation
forces a new deployment of every service whose task definition reads the secret.

moto's server holds the secret (versions and ``AWSPENDING`` / ``AWSCURRENT`` /
``AWSPREVIOUS``) and the ECS service; the task simulator (moto_rig.py) runs its tasks on a
virtual clock. Read straight from the stand-in, not through the drivers: the labels after
each step and the service's task definition. What a stand-in cannot show: IAM and KMS
permissions on the secret, Fargate pulling the new value at task start, the time ECS takes to
replace the tasks, and the service's deployments list (moto never adds a deployment on
``UpdateService``: the new revision is read from the service and its running tasks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from deployops.config.project import load_project
from deployops.domain import rotation as plan
from deployops.domain.secrets import ManagedSecret, SecretKind
from deployops.drivers.aws import build_with, resources_for
from deployops.drivers.aws.secretsmanager import SecretsManagerSecretStore
from deployops.engine.deploy import Deployer, DeployRequest
from deployops.engine.rotation import Rotator, marker_key
from deployops.errors import RotationError
from tests.integration.aws.moto_rig import REGION, MotoServer
from tests.integration.aws.test_aws_engine import Rig

pytestmark = pytest.mark.integration

API_KEYS = ManagedSecret(name="api-keys", kind=SecretKind.API_KEYS, period_days=180)


@pytest.fixture
def rig(aws: MotoServer, tmp_path: Path) -> Rig:
    """The engine rig, with ``secret://NAME`` resolved under the Secrets Manager ARN prefix."""
    rig = Rig(aws, tmp_path)
    path = rig.project.path
    doc = yaml.safe_load(path.read_text())
    prefix = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:shop/staging/"
    doc["environments"]["staging"]["aws"]["secret_arn_prefix"] = prefix
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    rig.project = load_project(path)
    rig.platform = build_with(
        rig.session,
        resources_for(rig.project, "staging"),
        environment="staging",
        clock=rig.clock,
        secret_arn_prefix=prefix,
    )
    return rig


def _labels(sm: Any, secret_id: str) -> dict[str, list[str]]:
    """Version id -> staging labels, as Secrets Manager itself reports them."""
    out = sm.list_secret_version_ids(SecretId=secret_id, IncludeDeprecated=True)
    return {v["VersionId"]: sorted(v.get("VersionStages", [])) for v in out["Versions"]}


def _ecs_service(rig: Rig, name: str) -> dict[str, Any]:
    ecs = boto3.client("ecs", region_name=REGION)
    [svc] = ecs.describe_services(cluster="shop-staging", services=[name])["services"]
    return svc  # type: ignore[no-any-return]


def _container_env(task_definition_arn: str) -> dict[str, str]:
    ecs = boto3.client("ecs", region_name=REGION)
    td = ecs.describe_task_definition(taskDefinition=task_definition_arn)["taskDefinition"]
    return {e["name"]: e["value"] for e in td["containerDefinitions"][0].get("environment", [])}


def test_sec3_rotation_moves_the_labels_and_forces_a_new_ecs_deployment(rig: Rig) -> None:
    sm = boto3.client("secretsmanager", region_name=REGION)
    secrets = SecretsManagerSecretStore(region=REGION, prefix="shop/staging/", client=sm)
    steps: list[tuple[str, dict[str, list[str]]]] = []
    rotator = Rotator(
        environment="staging",
        store=rig.store,
        secrets=secrets,
        clock=rig.clock,
        owner="test@host:1",
        compute=rig.platform.compute,
        poll_s=5.0,
        restart_timeout_s=600,
    )
    rotator.rotate(API_KEYS, actor="ops")  # the first value, before any task reads it
    [first] = _labels(sm, "shop/staging/api-keys")

    deployer = Deployer(
        project=rig.project,
        environment="staging",
        compute=rig.platform.compute,
        traffic=rig.platform.traffic,
        metrics=rig.platform.metrics,
        prober=rig.sim.prober(rig.world),
        store=rig.store,
        clock=rig.clock,
        app_environment=lambda _p, _e: ({}, {"API_KEYS": "secret://api-keys"}),
    )
    deployer.deploy(DeployRequest(service="web", version="1.0.0"))
    live = rig.prod_target_group()
    ecs_name = "shop-staging-blue" if live == "web-blue" else "shop-staging-green"
    before = _ecs_service(rig, ecs_name)["taskDefinition"]

    # record the labels after each staged step, read from Secrets Manager itself
    impl = dict(rotator.handlers)

    def watching(step_type: type) -> Any:
        def run(rot: Rotator, step: Any) -> object:
            out = impl[step_type](rot, step)
            steps.append((step_type.__name__, _labels(sm, "shop/staging/api-keys")))
            return out

        return run

    rotator.handlers = {t: watching(t) for t in impl}
    rec = rotator.rotate(API_KEYS, actor="ops")
    assert rec.status == "completed"
    new = rec.version_id
    by_step = dict(steps)
    # CreatePending: the new version is AWSPENDING, the old one still AWSCURRENT
    assert by_step["CreatePending"][new] == ["AWSPENDING"]
    assert by_step["CreatePending"][first] == ["AWSCURRENT"]
    assert by_step["TestPending"] == by_step["CreatePending"]
    # Promote: AWSCURRENT moves to the new version, the old one becomes AWSPREVIOUS
    assert "AWSCURRENT" in by_step["Promote"][new]
    assert by_step["Promote"][first] == ["AWSPREVIOUS"]
    assert sum("AWSCURRENT" in labels for labels in by_step["Promote"].values()) == 1
    assert (
        sum("AWSCURRENT" in labels for labels in _labels(sm, "shop/staging/api-keys").values()) == 1
    )

    # the service runs a new revision that records the version (never the value) ...
    svc = _ecs_service(rig, ecs_name)
    assert svc["taskDefinition"] != before
    assert _container_env(svc["taskDefinition"])[marker_key("api-keys")] == new
    # ... and its tasks were all replaced by tasks of the new revision (on ECS: a new
    # deployment of the service; moto keeps listing the first one)
    tasks = rig.platform.compute.describe_service(ecs_name)
    assert tasks is not None and tasks.healthy == tasks.desired == 4
    assert {t.task_definition for t in tasks.tasks if t.healthy} == {svc["taskDefinition"]}

    # a rotation whose test step fails leaves the labels as they were and the service alone
    labels_before = _labels(sm, "shop/staging/api-keys")

    def failing_test(rot: Rotator, step: Any) -> None:
        raise RotationError("the new keys were refused")

    rotator.handlers = {**impl, plan.TestPending: failing_test}
    with pytest.raises(RotationError, match="previous value is current again"):
        rotator.rotate(API_KEYS, actor="ops")
    after = _labels(sm, "shop/staging/api-keys")
    current = [v for v, labels in after.items() if "AWSCURRENT" in labels]
    assert current == [v for v, labels in labels_before.items() if "AWSCURRENT" in labels]
    assert not any("AWSPENDING" in labels for v, labels in after.items() if v not in labels_before)
    assert _ecs_service(rig, ecs_name)["taskDefinition"] == svc["taskDefinition"]
    assert plan.Promote.__name__ not in [
        s.name for s in rig.store.steps_for(rig.store.rotations()[0].id)
    ]


def test_sec3_secrets_manager_down_mid_rotation_then_resume_puts_it_back(rig: Rig) -> None:
    """The store stops answering after the pending value was created (the endpoint refuses
    connections): the test step fails, putting it back cannot reach the store either, so the
    rotation stays running with a message saying so; once the store answers, resume finishes
    putting it back: the value from before is the one AWSCURRENT, no AWSPENDING is left."""
    from botocore.config import Config

    from tests.integration.aws.moto_rig import free_port

    sm = boto3.client("secretsmanager", region_name=REGION)
    dead = boto3.client(
        "secretsmanager",
        region_name=REGION,
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    secrets = SecretsManagerSecretStore(region=REGION, prefix="shop/staging/", client=sm)
    rotator = Rotator(
        environment="staging", store=rig.store, secrets=secrets, clock=rig.clock, owner="t@h:1"
    )
    rotator.rotate(API_KEYS, actor="ops")
    before = _labels(sm, "shop/staging/api-keys")
    impl = dict(rotator.handlers)

    def create_then_lose_the_store(rot: Rotator, step: Any) -> object:
        out = impl[plan.CreatePending](rot, step)
        secrets._client = dead  # every later call is refused
        return out

    rotator.handlers = {**impl, plan.CreatePending: create_then_lose_the_store}
    with pytest.raises(RotationError, match="putting it back failed too") as info:
        rotator.rotate(API_KEYS, actor="ops")
    assert "deployops resume rot-" in (info.value.hint or "")
    [op] = [o for o in rig.store.list_operations(kinds=["rotate"]) if o.status == "running"]
    assert rig.store.get_lock("staging/secret:api-keys") is None  # released for resume

    secrets._client = sm  # the store answers again
    rotator.handlers = impl
    with pytest.raises(RotationError, match="previous value is current again"):
        rotator.resume(op.id, actor="ops", owner_alive=lambda _o: False)
    after = _labels(sm, "shop/staging/api-keys")
    assert [v for v, ls in after.items() if "AWSCURRENT" in ls] == [
        v for v, ls in before.items() if "AWSCURRENT" in ls
    ]
    assert not any("AWSPENDING" in ls for ls in after.values())
    done = rig.store.get_rotation(op.id)
    assert done is not None and done.status == "reverted" and done.error.startswith("TestPending")
