"""The AWS drivers against moto's server (and the simulator where moto stops).

Each test names what only a real account can confirm.
"""

from __future__ import annotations

import pytest

from deployops.clock import VirtualClock
from deployops.domain.model import TargetState, TaskDefinitionSpec
from deployops.drivers.aws import AwsSession, EcsCompute, ElbTraffic
from deployops.errors import DriverError, NotFoundError
from tests.integration.aws.moto_rig import EcsSimulator, MotoServer, World, provision, session_for

pytestmark = pytest.mark.integration

SESSIONS: dict[MotoServer, AwsSession] = {}


def _drivers(aws: MotoServer) -> tuple[World, ElbTraffic, EcsCompute, VirtualClock]:
    session = SESSIONS[aws] = session_for(aws)
    world = provision(session)
    clock = VirtualClock()
    traffic = ElbTraffic(client=session.client("elbv2"), resources=world.resources, clock=clock)
    compute = EcsCompute(
        client=session.client("ecs"),
        resources=world.resources,
        clock=clock,
        target_group_arn=traffic.target_group_arn,
        alarm_names=("shop-staging-HighErrorRate",),
    )
    return world, traffic, compute, clock


def _spec(version: str, **env: str) -> TaskDefinitionSpec:
    return TaskDefinitionSpec(
        family="shop-staging",
        version=version,
        port=3000,
        image=f"repo/web:{version}",
        environment=tuple(sorted({"APP_VERSION": version, **env}.items())),
        secrets=(("DB_PASSWORD", "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:db"),),
    )


def test_switch_is_modify_listener_read_back(aws: MotoServer) -> None:
    """DEP-3: the production listener's default action moves to green and reads back so.
    Real account only: the ALB applying the change to in-flight connections."""
    world, traffic, _, _ = _drivers(aws)
    assert traffic.describe_listener("web-prod").target_group == "web-blue"
    assert traffic.describe_listener("web-prod").host == world.resources.alb_dns_name
    after = traffic.switch_listener("web-prod", "web-green")
    assert after.forwards == (("web-green", 100),)
    assert traffic.describe_listener("web-prod").target_group == "web-green"
    with pytest.raises(NotFoundError, match="web-purple"):
        traffic.switch_listener("web-prod", "web-purple")
    assert traffic.describe_listener("web-prod").target_group == "web-green"  # unchanged


def test_weighted_forward_and_live_group_guard(aws: MotoServer) -> None:
    """Capability ``weights``: a weighted forward action, read back as weights; a group a
    listener forwards to cannot be removed. Real account only: ALB's weight rounding."""
    _, traffic, _, _ = _drivers(aws)
    assert "weights" in traffic.capabilities
    listener = traffic.set_weights("web-prod", {"web-blue": 90, "web-green": 10})
    assert dict(listener.forwards) == {"web-blue": 90, "web-green": 10}
    with pytest.raises(DriverError, match="web-prod"):
        traffic.delete_target_group("web-green")


def test_task_definitions_fargate_and_idempotent(aws: MotoServer) -> None:
    """Fargate / awsvpc, secrets as valueFrom, the same spec registers once. Real account
    only: that the execution role can read the secret."""
    _, _, compute, _ = _drivers(aws)
    first = compute.register_task_definition(_spec("1.0.0"))
    assert compute.register_task_definition(_spec("1.0.0")) == first
    second = compute.register_task_definition(_spec("1.1.0"))
    assert second.revision == first.revision + 1
    assert compute.describe_task_definition(first.ref).spec.version == "1.0.0"
    assert compute.describe_task_definition("shop-staging").spec.image == "repo/web:1.1.0"
    assert dict(second.spec.secrets)["DB_PASSWORD"].startswith("arn:aws:secretsmanager")
    raw = compute.client.describe_task_definition(taskDefinition=first.ref)["taskDefinition"]
    assert raw["networkMode"] == "awsvpc"
    assert raw["requiresCompatibilities"] == ["FARGATE"]
    with pytest.raises(NotFoundError, match="nosuch"):
        compute.describe_task_definition("nosuch:1")


def test_service_runs_and_registers_targets(aws: MotoServer) -> None:
    """DEP-2: a colour's service starts, its tasks turn RUNNING and its targets healthy
    (the simulator, on the virtual clock). Real account only: Fargate's start-up time and the
    ALB's health checks against the real container."""
    _, traffic, compute, clock = _drivers(aws)
    EcsSimulator(session=SESSIONS[aws], clock=clock, cluster="shop-staging").install()
    td = compute.register_task_definition(_spec("1.0.0"))
    state = compute.create_service(
        "web-green", task_definition=td.ref, desired_count=2, target_group="web-green"
    )
    assert state.desired == 2
    assert "web-green" in compute.list_services()
    tg = traffic.describe_target_group("web-green")
    assert tg is not None
    assert tg.health_check.path == "/health"
    clock.advance(2.5)
    svc = compute.describe_service("web-green")
    assert svc is not None
    assert svc.running == 2
    assert {t.state for t in (traffic.describe_target_group("web-green") or tg).targets} == {
        TargetState.INITIAL
    }
    clock.advance(2.5)
    svc = compute.describe_service("web-green")
    assert svc is not None and svc.steady
    assert all(t.task_definition == td.ref for t in svc.tasks)
    assert (traffic.describe_target_group("web-green") or tg).healthy_count == 2
    compute.update_service("web-green", desired_count=0)
    clock.advance(1)
    assert (traffic.describe_target_group("web-green") or tg).healthy_count == 0
    compute.delete_service("web-green")
    assert compute.describe_service("web-green") is None


def test_scaling_bounds_follow_the_colour_going_idle_or_live(aws: MotoServer) -> None:
    """IAC-3: with Application Auto Scaling registered for both colours, scaling the old
    colour to 0 also sets its bounds to 0..0 (or auto scaling would start it again), and the
    colour going live gets 2..10 with the CPU 70 % target tracking (IAC-5). Real account only:
    Application Auto Scaling acting on the bounds."""
    from deployops.domain.scaling import ScalingPolicy
    from deployops.drivers.aws import build_with

    session = session_for(aws)
    world = provision(session)
    clock = VirtualClock()
    platform = build_with(
        session, world.resources, environment="staging", clock=clock, scaling=ScalingPolicy()
    )
    scaler = platform.extras["scaler"]
    compute = platform.compute
    td = compute.register_task_definition(_spec("1.0.0"))
    for colour in ("web-blue", "web-green"):
        compute.create_service(colour, task_definition=td.ref, desired_count=2, target_group=colour)
    state = scaler.apply_policy("web-blue", ScalingPolicy())
    assert (state.min_capacity, state.max_capacity) == (2, 10)
    assert state.policies == ("shop-staging-blue-CPUUtilization-target-tracking",)
    compute.update_service("web-blue", desired_count=0)
    assert (scaler.describe("web-blue").min_capacity, scaler.describe("web-blue").max_capacity) == (
        0,
        0,
    )
    compute.update_service("web-blue", desired_count=4)
    assert (scaler.describe("web-blue").min_capacity, scaler.describe("web-blue").max_capacity) == (
        2,
        10,
    )
    compute.update_service("web-green", desired_count=0)  # no scalable target: left alone
    assert scaler.describe("web-green").policies == ()
