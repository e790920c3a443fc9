"""A platform's own blue/green deployment (``aws.mode: ecs-native``) as data: the deployment
as deployops reads it, and the plan that drives it (DEP-1..DEP-3, RB-1, RB-2).

The platform (ECS) starts the new revision behind the idle target group, points the test
listener at it, and then *pauses* (a ``PAUSE`` lifecycle hook at ``POST_TEST_TRAFFIC_SHIFT``)
until deployops' smoke checks through the test listener pass; only then does production
move. During the bake time deployops judges the new revision with its own rollback rules
and, on a breach, has the platform roll back (ECS: ``StopServiceDeployment(ROLLBACK)``).

>>> from deployops.domain.model import TaskDefinitionSpec
>>> spec = TaskDefinitionSpec(family="web", version="1.1.0", port=3000)
>>> plan = native_plan(NativeParams(service="web", spec=spec, active_colour="blue"))
>>> [s.kind for s in plan.steps]  # doctest: +NORMALIZE_WHITESPACE
['RegisterTaskDefinition', 'StartNativeDeployment', 'NativeTestTraffic',
 'NativeProductionShift', 'Observe', 'WaitNativeDeployment']
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from deployops.domain.model import TaskDefinitionSpec
from deployops.domain.names import other_colour, prod_listener, target_group, test_listener
from deployops.domain.plan import (
    FROM_CONTEXT,
    Observe,
    Plan,
    RegisterTaskDefinition,
    Step,
    UseTaskDefinition,
    register_step_type,
)

__all__ = [
    "DEPLOYMENT_FROM_CONTEXT",
    "NATIVE_STRATEGY",
    "NativeDeployment",
    "NativeParams",
    "NativeProductionShift",
    "NativeStart",
    "NativeTestTraffic",
    "PauseHook",
    "StartNativeDeployment",
    "WaitNativeDeployment",
    "bake_minutes",
    "native_plan",
    "shift_duration_s",
]

NATIVE_STRATEGY = "ecs-native"  # Plan.strategy of a deployment the platform carries out
DEPLOYMENT_FROM_CONTEXT = "@deployment"  # the deployment started earlier in this plan

# The stage at which deployops' pause hook holds the deployment: the test listener reaches the
# new revision, production does not yet.
PAUSE_STAGE = "POST_TEST_TRAFFIC_SHIFT"
# Stages at and after which production traffic reaches the new revision.
PRODUCTION_STAGES = frozenset(
    {"PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"}
)
RUNNING = frozenset({"PENDING", "IN_PROGRESS"})
ROLLING_BACK = frozenset({"STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"})
ENDED = frozenset({"SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED"})


@dataclass(frozen=True, slots=True)
class PauseHook:
    """One lifecycle hook of a running deployment (ECS ``lifecycleHookDetails``)."""

    hook_id: str
    target_type: str  # PAUSE | AWS_LAMBDA
    status: str  # AWAITING_ACTION | IN_PROGRESS | SUCCEEDED | FAILED | TIMED_OUT
    expires_at: datetime | None = None
    timeout_action: str = ""  # what the platform does when nobody answers: ROLLBACK | CONTINUE

    @property
    def awaiting(self) -> bool:
        return self.target_type == "PAUSE" and self.status == "AWAITING_ACTION"


@dataclass(frozen=True, slots=True)
class NativeDeployment:
    """A platform deployment as read back (ECS ``DescribeServiceDeployments``)."""

    arn: str
    status: str  # PENDING, IN_PROGRESS, SUCCESSFUL, STOPPED, ROLLBACK_*...
    stage: str = ""  # the lifecycle stage (PRE_SCALE_UP ... CLEAN_UP)
    reason: str = ""
    target_revision: str = ""  # the service revision being deployed
    hooks: tuple[PauseHook, ...] = ()

    @property
    def running(self) -> bool:
        return self.status in RUNNING

    @property
    def rolling_back(self) -> bool:
        return self.status in ROLLING_BACK

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @property
    def paused(self) -> PauseHook | None:
        """The pause hook waiting for deployops' word, if the deployment is held at one."""
        return next((h for h in self.hooks if h.awaiting), None)

    @property
    def released(self) -> bool:
        """deployops' pause hook was answered (CONTINUE): production may move, or moved."""
        answered = any(h.target_type == "PAUSE" and h.status == "SUCCEEDED" for h in self.hooks)
        return (answered and self.running) or self.production_shifted

    @property
    def production_shifted(self) -> bool:
        return self.status == "SUCCESSFUL" or (self.running and self.stage in PRODUCTION_STAGES)


@dataclass(frozen=True, slots=True, kw_only=True)
class NativeStart:
    """What a platform deployment is started with (frozen into the plan's step)."""

    service: str
    task_definition: str
    target_group: str  # the idle group the new revision starts behind
    previous_target_group: str  # the group production forwards to now
    strategy: str = "BLUE_GREEN"
    bake_time_s: float = 300.0  # DEP-3: the stability window
    pause_timeout_s: float = 600.0  # how long the platform waits for the smoke checks
    # CANARY: the one canary step's share of production and how long it bakes
    canary_percent: float = 0.0
    canary_bake_s: float = 0.0
    # LINEAR: the share each step adds and how long each step bakes
    step_percent: float = 0.0
    step_bake_s: float = 0.0


def shift_duration_s(
    strategy: str, *, canary_bake_s: float, step_percent: float, step_bake_s: float
) -> float:
    """How long the platform takes to move production to the new revision (its bakes between
    the steps, in whole minutes): one canary bake; a linear bake after every step but the one
    that reaches 100 % (ECS: ``ceil(100 / step) - 1`` bakes)."""
    if strategy == "CANARY":
        return bake_minutes(canary_bake_s) * 60.0
    if strategy == "LINEAR" and step_percent > 0:
        return (math.ceil(100.0 / step_percent - 1e-9) - 1) * bake_minutes(step_bake_s) * 60.0
    return 0.0


def bake_minutes(seconds: float) -> int:
    """The platform's bake time in whole minutes, never shorter than deployops' observation:
    the old revision must still run when a rule breaks at the window's last sample."""
    return max(0, math.ceil(seconds / 60)) if seconds > 0 else 0


# ---------------------------------------------------------------------------------- steps
@register_step_type
@dataclass(frozen=True, slots=True)
class StartNativeDeployment(Step):
    phase: ClassVar[str] = "deploy"
    service: str
    target_group: str
    previous_target_group: str
    strategy: str = "BLUE_GREEN"
    bake_time_s: float = 300.0
    pause_timeout_s: float = 600.0
    task_definition: str = FROM_CONTEXT
    canary_percent: float = 0.0
    canary_bake_s: float = 0.0
    step_percent: float = 0.0
    step_bake_s: float = 0.0

    def describe(self) -> str:
        how = ""
        if self.strategy == "CANARY":
            how = f", {self.canary_percent:g}% of production for {self.canary_bake_s:g}s first"
        elif self.strategy == "LINEAR":
            how = f", production in steps of {self.step_percent:g}% every {self.step_bake_s:g}s"
        return (
            f"start the platform's {self.strategy} deployment of {self.service} behind "
            f"{self.target_group} (paused after test traffic{how})"
        )

    def start(self) -> NativeStart:
        return NativeStart(
            service=self.service,
            task_definition=self.task_definition,
            target_group=self.target_group,
            previous_target_group=self.previous_target_group,
            strategy=self.strategy,
            bake_time_s=self.bake_time_s,
            pause_timeout_s=self.pause_timeout_s,
            canary_percent=self.canary_percent,
            canary_bake_s=self.canary_bake_s,
            step_percent=self.step_percent,
            step_bake_s=self.step_bake_s,
        )


@register_step_type
@dataclass(frozen=True, slots=True)
class NativeTestTraffic(Step):
    """Wait until the deployment is held at its pause hook with the test listener on the new
    revision, smoke-check through it, then let production move (DEP-2)."""

    phase: ClassVar[str] = "deploy"
    service: str
    listener: str
    target_group: str
    checks: tuple[tuple[str, int], ...]
    timeout_s: float
    interval_s: float = 5.0
    deployment: str = DEPLOYMENT_FROM_CONTEXT

    def describe(self) -> str:
        paths = ", ".join(f"{p}->{s}" for p, s in self.checks)
        return (
            f"wait up to {self.timeout_s:g}s for {self.target_group} on {self.listener}, "
            f"smoke-test {paths}, then release production"
        )


@register_step_type
@dataclass(frozen=True, slots=True)
class NativeProductionShift(Step):
    """Wait until the platform moved production and read the listener back (DEP-3)."""

    phase: ClassVar[str] = "switch"
    service: str
    listener: str
    target_group: str
    previous_target_group: str
    timeout_s: float
    interval_s: float = 5.0
    deployment: str = DEPLOYMENT_FROM_CONTEXT

    def describe(self) -> str:
        return (
            f"wait for {self.listener} to move from {self.previous_target_group} "
            f"to {self.target_group}"
        )


@register_step_type
@dataclass(frozen=True, slots=True)
class WaitNativeDeployment(Step):
    """Wait until the platform ends the deployment (bake time, then the old revision goes)."""

    phase: ClassVar[str] = "cleanup"
    service: str
    timeout_s: float
    interval_s: float = 5.0
    deployment: str = DEPLOYMENT_FROM_CONTEXT

    def describe(self) -> str:
        return f"wait up to {self.timeout_s:g}s for the platform to finish the deployment"


@dataclass(frozen=True, slots=True, kw_only=True)
class NativeParams:
    service: str
    spec: TaskDefinitionSpec
    active_colour: str  # the colour production forwards to now
    reuse_task_definition: str = ""  # a rollback redeploys this revision as it is
    strategy: str = "BLUE_GREEN"
    health_timeout_s: float = 60.0
    stability_window_s: float = 300.0
    sample_interval_s: float = 10.0
    smoke_checks: tuple[tuple[str, int], ...] = (("/health", 200),)
    max_error_rate: float = 1.0
    poll_interval_s: float = 5.0
    pause_timeout_s: float = 600.0
    # How long the platform may take to reach a stage: its scale-up, health checks and
    # traffic shifts run at its own pace, on top of the health timeout.
    stage_slack_s: float = 900.0
    canary_percent: float = 0.0  # CANARY
    canary_bake_s: float = 0.0
    step_percent: float = 0.0  # LINEAR
    step_bake_s: float = 0.0


def native_plan(p: NativeParams) -> Plan:
    """The platform's blue/green (``CANARY``, ``LINEAR``), driven and judged by deployops.

    With ``CANARY`` or ``LINEAR`` the platform moves production in steps after the test
    traffic: deployops judges the new revision with its rules while it does (an ``Observe``
    over the steps' bakes, judged on the share production sends it), then reads the listener
    back once all of production moved and judges the bake as for ``BLUE_GREEN``.
    """
    new_tg = target_group(p.service, other_colour(p.active_colour))
    old_tg = target_group(p.service, p.active_colour)
    bake_s = bake_minutes(p.stability_window_s) * 60.0
    shifting_s = shift_duration_s(
        p.strategy,
        canary_bake_s=p.canary_bake_s,
        step_percent=p.step_percent,
        step_bake_s=p.step_bake_s,
    )
    first: Step = (
        UseTaskDefinition(task_definition=p.reuse_task_definition)
        if p.reuse_task_definition
        else RegisterTaskDefinition(spec=p.spec)
    )
    steps: list[Step] = [
        first,
        StartNativeDeployment(
            service=p.service,
            target_group=new_tg,
            previous_target_group=old_tg,
            strategy=p.strategy,
            bake_time_s=bake_s,
            pause_timeout_s=p.pause_timeout_s,
            canary_percent=p.canary_percent if p.strategy == "CANARY" else 0.0,
            canary_bake_s=p.canary_bake_s if p.strategy == "CANARY" else 0.0,
            step_percent=p.step_percent if p.strategy == "LINEAR" else 0.0,
            step_bake_s=p.step_bake_s if p.strategy == "LINEAR" else 0.0,
        ),
        NativeTestTraffic(
            service=p.service,
            listener=test_listener(p.service),
            target_group=new_tg,
            checks=p.smoke_checks,
            timeout_s=p.health_timeout_s + p.stage_slack_s,
            interval_s=p.poll_interval_s,
        ),
    ]
    if shifting_s > 0:
        # Judged while the platform moves production step by step (RB-1 on its share).
        steps.append(
            Observe(
                service=p.service,
                target_group=new_tg,
                baseline_target_group=old_tg,
                window_s=shifting_s,
                interval_s=p.sample_interval_s,
                max_error_rate=p.max_error_rate,
            )
        )
    steps.append(
        NativeProductionShift(
            service=p.service,
            listener=prod_listener(p.service),
            target_group=new_tg,
            previous_target_group=old_tg,
            timeout_s=p.stage_slack_s + shifting_s,
            interval_s=p.poll_interval_s,
        )
    )
    if p.stability_window_s > 0:
        steps.append(
            Observe(
                service=p.service,
                target_group=new_tg,
                baseline_target_group=old_tg,
                window_s=p.stability_window_s,
                interval_s=p.sample_interval_s,
                max_error_rate=p.max_error_rate,
            )
        )
    steps.append(
        WaitNativeDeployment(
            service=p.service,
            timeout_s=bake_s + p.stage_slack_s,
            interval_s=p.poll_interval_s,
        )
    )
    return Plan(
        strategy=NATIVE_STRATEGY,
        steps=tuple(steps),
        target_group=new_tg,
        previous_target_group=old_tg,
        notes=(
            f"the platform moves traffic; deployops holds production until the smoke checks "
            f"pass and judges the {p.stability_window_s:g}s bake with its rollback rules",
        ),
    )
