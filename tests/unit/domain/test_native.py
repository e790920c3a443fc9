"""The platform's own blue/green as a plan (DEP-1..DEP-3 on ``aws.mode: ecs-native``)."""

from __future__ import annotations

import doctest

from deployops.domain import native as native_module
from deployops.domain.model import TaskDefinitionSpec
from deployops.domain.native import (
    NATIVE_STRATEGY,
    NativeDeployment,
    NativeParams,
    NativeProductionShift,
    NativeTestTraffic,
    PauseHook,
    StartNativeDeployment,
    bake_minutes,
    native_plan,
)
from deployops.domain.plan import Observe, Plan, UseTaskDefinition

SPEC = TaskDefinitionSpec(family="web", version="1.1.0", port=3000)


def test_the_module_examples_hold() -> None:
    assert doctest.testmod(native_module).failed == 0


def test_the_new_revision_goes_behind_the_idle_group_and_bakes_for_the_window() -> None:
    """DEP-3: bake time = the stability window, in whole minutes, never shorter."""
    plan = native_plan(
        NativeParams(service="web", spec=SPEC, active_colour="green", stability_window_s=90)
    )
    assert plan.strategy == NATIVE_STRATEGY
    assert (plan.target_group, plan.previous_target_group) == ("web-blue", "web-green")
    start = next(s for s in plan.steps if isinstance(s, StartNativeDeployment))
    assert start.bake_time_s == 120.0
    test = next(s for s in plan.steps if isinstance(s, NativeTestTraffic))
    assert (test.listener, test.target_group) == ("web-test", "web-blue")
    shift = next(s for s in plan.steps if isinstance(s, NativeProductionShift))
    assert (shift.listener, shift.previous_target_group) == ("web-prod", "web-green")
    observe = next(s for s in plan.steps if isinstance(s, Observe))
    assert (observe.window_s, observe.baseline_target_group) == (90, "web-green")
    assert [bake_minutes(s) for s in (0, 1, 60, 61, 300)] == [0, 1, 1, 2, 5]


def test_a_rollback_reuses_the_previous_revision_and_the_plan_survives_storage() -> None:
    plan = native_plan(
        NativeParams(service="web", spec=SPEC, active_colour="blue", reuse_task_definition="web:7")
    )
    assert plan.steps[0] == UseTaskDefinition(task_definition="web:7")
    assert Plan.from_record(plan.to_record()) == plan


def test_a_deployment_is_paused_only_by_a_pause_hook_awaiting_action() -> None:
    waiting = PauseHook(hook_id="h1", target_type="PAUSE", status="AWAITING_ACTION")
    lambda_hook = PauseHook(hook_id="h2", target_type="AWS_LAMBDA", status="AWAITING_ACTION")
    dep = NativeDeployment(arn="a", status="IN_PROGRESS", stage="POST_TEST_TRAFFIC_SHIFT")
    assert dep.paused is None
    assert NativeDeployment(arn="a", status="IN_PROGRESS", hooks=(lambda_hook,)).paused is None
    assert NativeDeployment(arn="a", status="IN_PROGRESS", hooks=(waiting,)).paused == waiting
    assert not dep.production_shifted
    assert NativeDeployment(arn="a", status="IN_PROGRESS", stage="BAKE_TIME").production_shifted
    assert NativeDeployment(arn="a", status="SUCCESSFUL").production_shifted
    rolling_back = NativeDeployment(arn="a", status="ROLLBACK_IN_PROGRESS", stage="BAKE_TIME")
    assert rolling_back.rolling_back
    assert not rolling_back.production_shifted


def test_canary_and_linear_are_judged_while_the_platform_moves_production() -> None:
    """ECS CANARY / LINEAR: an Observe over the steps' bakes (whole minutes) before the
    production read-back, the stability window's Observe after it; the settings travel in the
    start step (frozen into the plan)."""
    from deployops.domain.native import shift_duration_s

    canary = native_plan(
        NativeParams(
            service="web",
            spec=SPEC,
            active_colour="blue",
            strategy="CANARY",
            canary_percent=10,
            canary_bake_s=90,
        )
    )
    kinds = [s.kind for s in canary.steps]
    assert kinds[3:6] == ["Observe", "NativeProductionShift", "Observe"]
    judged = canary.steps[3]
    assert isinstance(judged, Observe) and judged.window_s == 120.0
    start = canary.steps[1]
    assert isinstance(start, StartNativeDeployment)
    assert (start.strategy, start.canary_percent, start.canary_bake_s) == ("CANARY", 10, 90)
    assert "10% of production for 90s first" in start.describe()
    assert Plan.from_record(canary.to_record()) == canary
    # ECS: ceil(100 / step) - 1 bakes, none after 100 %
    assert shift_duration_s("LINEAR", canary_bake_s=0, step_percent=25, step_bake_s=60) == 180
    assert shift_duration_s("LINEAR", canary_bake_s=0, step_percent=30, step_bake_s=60) == 180
    assert shift_duration_s("BLUE_GREEN", canary_bake_s=60, step_percent=0, step_bake_s=0) == 0
    blue_green = native_plan(NativeParams(service="web", spec=SPEC, active_colour="blue"))
    assert [s.kind for s in blue_green.steps].count("Observe") == 1
