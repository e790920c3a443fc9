"""Deployment plans as data (DEP-1..DEP-4, IAC-4).

A strategy turns a request into a :class:`Plan`: a tuple of frozen step dataclasses. Plans are
pure values: tests compare them with ``==``, ``--dry-run`` prints them, the runner stores them
and executes them one step at a time. Values a step needs from an earlier one (the task
definition revision registered in phase 1) are named by :data:`FROM_CONTEXT` and filled in by
the runner from the earlier step's stored result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from deployops.domain.model import HealthCheck, TaskDefinitionSpec
from deployops.domain.names import (
    COLOURS,
    colour_of,
    other_colour,
    prod_listener,
    target_group,
    test_listener,
)

__all__ = [
    "FROM_CONTEXT",
    "SHIFT_STRATEGIES",
    "Bake",
    "BlueGreenParams",
    "CheckTrafficMoved",
    "CreateTargetGroup",
    "Observe",
    "Plan",
    "RegisterTaskDefinition",
    "RollingParams",
    "RollingUpdate",
    "ScaleService",
    "ScheduleDeleteTargetGroup",
    "ShiftParams",
    "ShiftTraffic",
    "SmokeTest",
    "StartService",
    "Step",
    "SwitchListener",
    "UseTaskDefinition",
    "WaitHealthy",
    "blue_green_plan",
    "colour_of",
    "other_colour",
    "register_step_type",
    "rolling_plan",
    "shift_plan",
    "step_from_json",
]

FROM_CONTEXT = "@task_definition"  # "use the task definition registered earlier in this plan"

_ = COLOURS  # re-exported for callers that import the colours from here


@dataclass(frozen=True, slots=True)
class Step:
    phase: ClassVar[str] = ""
    # (port, capability) pairs a driver must declare for this step to run on it; checked when
    # the plan is made, so a platform that cannot do it refuses the plan before any change.
    requires: ClassVar[frozenset[tuple[str, str]]] = frozenset()

    @property
    def kind(self) -> str:
        return type(self).__name__

    def describe(self) -> str:
        """One line for people; concrete steps say what they do."""
        return self.kind

    def to_json(self) -> dict[str, Any]:
        return {"step": self.kind, "phase": self.phase, **_jsonable(dataclasses.asdict(self))}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# ---------------------------------------------------------------- phase 1: prepare (DEP-1)
@dataclass(frozen=True, slots=True)
class RegisterTaskDefinition(Step):
    phase: ClassVar[str] = "prepare"
    spec: TaskDefinitionSpec

    def describe(self) -> str:
        return f"register task definition {self.spec.family} for version {self.spec.version}"


@dataclass(frozen=True, slots=True)
class UseTaskDefinition(Step):
    """Reuse a registered revision as it is (a rollback returns to the exact previous one)."""

    phase: ClassVar[str] = "prepare"
    task_definition: str

    def describe(self) -> str:
        return f"reuse task definition {self.task_definition}"


@dataclass(frozen=True, slots=True)
class CreateTargetGroup(Step):
    phase: ClassVar[str] = "prepare"
    target_group: str
    health_check: HealthCheck

    def describe(self) -> str:
        return f"create target group {self.target_group} (health check {self.health_check.path})"


# ---------------------------------------------------------------- phase 2: deploy (DEP-2)
@dataclass(frozen=True, slots=True)
class StartService(Step):
    phase: ClassVar[str] = "deploy"
    service: str
    target_group: str
    desired_count: int
    task_definition: str = FROM_CONTEXT

    def describe(self) -> str:
        return f"start {self.service} with desired_count={self.desired_count}"


@dataclass(frozen=True, slots=True)
class WaitHealthy(Step):
    phase: ClassVar[str] = "deploy"
    service: str
    target_group: str
    desired_count: int
    timeout_s: float
    task_definition: str = FROM_CONTEXT
    interval_s: float = 0.5  # how often health is read (half the health-check interval)

    def describe(self) -> str:
        return (
            f"wait up to {self.timeout_s:g}s until all {self.desired_count} containers of "
            f"{self.service} are healthy"
        )


@dataclass(frozen=True, slots=True)
class SmokeTest(Step):
    phase: ClassVar[str] = "deploy"
    listener: str
    target_group: str
    checks: tuple[tuple[str, int], ...]  # (path, expected status)

    def describe(self) -> str:
        paths = ", ".join(f"{p}->{s}" for p, s in self.checks)
        return f"point {self.listener} at {self.target_group} and smoke-test {paths}"


# ---------------------------------------------------------------- phase 3: switch (DEP-3)
@dataclass(frozen=True, slots=True)
class SwitchListener(Step):
    phase: ClassVar[str] = "switch"
    listener: str
    target_group: str
    previous_target_group: str

    def describe(self) -> str:
        if not self.previous_target_group:
            return f"point {self.listener} at {self.target_group}"
        return f"switch {self.listener} from {self.previous_target_group} to {self.target_group}"


@dataclass(frozen=True, slots=True)
class CheckTrafficMoved(Step):
    phase: ClassVar[str] = "switch"
    listener: str
    target_group: str
    previous_target_group: str
    health_path: str = "/health"  # probed through the listener: a healthy new container answers

    def describe(self) -> str:
        return f"confirm all traffic of {self.listener} reaches {self.target_group}"


@dataclass(frozen=True, slots=True)
class Observe(Step):
    phase: ClassVar[str] = "switch"
    service: str
    target_group: str
    baseline_target_group: str
    window_s: float
    interval_s: float
    max_error_rate: float

    def describe(self) -> str:
        return (
            f"observe {self.target_group} for {self.window_s:g}s "
            f"(every {self.interval_s:g}s, against the rollback rules)"
        )


# ---------------------------------------------------------------- canary and linear shifts
@dataclass(frozen=True, slots=True)
class ShiftTraffic(Step):
    """Send ``percent`` of the listener's requests to the new target group, the rest to the
    previous one (a weighted split; 0 is all on the previous group)."""

    phase: ClassVar[str] = "shift"
    requires: ClassVar[frozenset[tuple[str, str]]] = frozenset({("traffic", "weights")})
    listener: str
    target_group: str
    previous_target_group: str
    percent: int

    def describe(self) -> str:
        return (
            f"shift {self.percent}% of {self.listener} to {self.target_group} "
            f"({100 - self.percent}% stays on {self.previous_target_group})"
        )

    def weights(self) -> dict[str, int]:
        return {self.previous_target_group: 100 - self.percent, self.target_group: self.percent}


@dataclass(frozen=True, slots=True)
class Bake(Step):
    """Observe one step of a shift for ``window_s`` while both versions take requests: the
    rollback rules on the new version, then the comparison of the new version with the
    previous one over the same window. A failure puts every request back on the previous
    version before anything else."""

    phase: ClassVar[str] = "shift"
    service: str
    target_group: str
    baseline_target_group: str
    percent: int
    window_s: float
    interval_s: float
    max_error_rate: float

    def describe(self) -> str:
        return (
            f"observe {self.target_group} at {self.percent}% for {self.window_s:g}s and "
            f"compare it with {self.baseline_target_group}"
        )

    def observe(self) -> Observe:
        """The rollback rules' view of this step (the new version, the previous one as the
        baseline taking traffic of its own)."""
        return Observe(
            service=self.service,
            target_group=self.target_group,
            baseline_target_group=self.baseline_target_group,
            window_s=self.window_s,
            interval_s=self.interval_s,
            max_error_rate=self.max_error_rate,
        )


# ---------------------------------------------------------------- phase 4: cleanup (DEP-4)
@dataclass(frozen=True, slots=True)
class ScaleService(Step):
    phase: ClassVar[str] = "cleanup"
    service: str
    desired_count: int

    def describe(self) -> str:
        return f"scale {self.service} to desired_count={self.desired_count}"


@dataclass(frozen=True, slots=True)
class ScheduleDeleteTargetGroup(Step):
    phase: ClassVar[str] = "cleanup"
    target_group: str
    after_s: float

    def describe(self) -> str:
        return f"schedule deletion of {self.target_group} in {self.after_s:g}s"


# ---------------------------------------------------------------- rolling (IAC-4)
@dataclass(frozen=True, slots=True)
class RollingUpdate(Step):
    phase: ClassVar[str] = "deploy"
    requires: ClassVar[frozenset[tuple[str, str]]] = frozenset({("compute", "rolling_update")})
    service: str
    target_group: str
    desired_count: int
    maximum_percent: int
    minimum_healthy_percent: int
    timeout_s: float
    task_definition: str = FROM_CONTEXT

    def describe(self) -> str:
        return (
            f"rolling update of {self.service} (max {self.maximum_percent}%, "
            f"min healthy {self.minimum_healthy_percent}%)"
        )


STEP_TYPES: dict[str, type[Step]] = {}

_S = TypeVar("_S", bound=type[Step])


def register_step_type(cls: _S) -> _S:
    """Make a step type storable: :func:`step_from_json` rebuilds it by its class name.

    Every step type an operation kind plans is registered once (a class decorator works)::

        @register_step_type
        @dataclass(frozen=True, slots=True)
        class TakeBackup(Step):
            phase: ClassVar[str] = "prepare"
            stanza: str
    """
    known = STEP_TYPES.get(cls.__name__)
    if known is not None and known is not cls:
        raise ValueError(f"step type {cls.__name__} is registered twice")
    STEP_TYPES[cls.__name__] = cls
    return cls


for _cls in (
    RegisterTaskDefinition,
    UseTaskDefinition,
    CreateTargetGroup,
    StartService,
    WaitHealthy,
    SmokeTest,
    SwitchListener,
    CheckTrafficMoved,
    Observe,
    ScaleService,
    ScheduleDeleteTargetGroup,
    RollingUpdate,
    ShiftTraffic,
    Bake,
):
    register_step_type(_cls)


def _tuples(value: Any) -> Any:
    """JSON lists back to the tuples frozen steps hold."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def step_from_json(data: Mapping[str, Any]) -> Step:
    """Rebuild a step stored by :meth:`Step.to_json` (for ``resume``)."""
    payload = {k: v for k, v in data.items() if k not in ("step", "phase")}
    try:
        cls = STEP_TYPES[data["step"]]
    except KeyError:
        raise ValueError(f"unknown step type {data.get('step')!r} in a stored plan") from None
    if cls is RegisterTaskDefinition:
        spec = dict(payload["spec"])
        spec["health_check"] = HealthCheck(**spec["health_check"])
        for key in ("command", "environment", "secrets"):
            spec[key] = tuple(tuple(v) if isinstance(v, list) else v for v in spec[key])
        return RegisterTaskDefinition(spec=TaskDefinitionSpec(**spec))
    if cls is CreateTargetGroup:
        return CreateTargetGroup(
            target_group=payload["target_group"],
            health_check=HealthCheck(**payload["health_check"]),
        )
    return cls(**{k: _tuples(v) for k, v in payload.items()})


@dataclass(frozen=True, slots=True)
class Plan:
    """A frozen plan: its steps and every setting they need (``settings``, JSON values).

    ``settings`` is what a resumed run, a rollback and an incident report read instead of the
    live ``deployops.yaml``: the rollback rules with their windows, the smoke checks, the
    notification routes, whatever the operation kind's steps look up.
    """

    strategy: str
    steps: tuple[Step, ...]
    target_group: str
    previous_target_group: str
    notes: tuple[str, ...] = field(default=())
    settings: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self.steps]

    def to_record(self) -> dict[str, Any]:
        """Everything needed to run the plan again, as JSON (stored with the operation)."""
        return {
            "strategy": self.strategy,
            "steps": self.to_json(),
            "target_group": self.target_group,
            "previous_target_group": self.previous_target_group,
            "notes": list(self.notes),
            "settings": _jsonable(dict(self.settings)),
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Plan:
        return cls(
            strategy=str(data.get("strategy", "")),
            steps=tuple(step_from_json(s) for s in data.get("steps", ())),
            target_group=str(data.get("target_group", "")),
            previous_target_group=str(data.get("previous_target_group", "")),
            notes=tuple(data.get("notes", ())),
            settings=dict(data.get("settings", {})),
        )

    def with_settings(self, **settings: Any) -> Plan:
        return dataclasses.replace(self, settings={**self.settings, **settings})


@dataclass(frozen=True, slots=True)
class BlueGreenParams:
    service: str
    spec: TaskDefinitionSpec
    health_check: HealthCheck
    desired_count: int
    active_colour: str  # the colour serving production now
    has_active: bool  # False on a first deploy: nothing to switch away from
    health_timeout_s: float = 60.0
    stability_window_s: float = 300.0
    sample_interval_s: float = 10.0
    target_group_retention_s: float = 86400.0
    smoke_checks: tuple[tuple[str, int], ...] = (("/health", 200),)
    max_error_rate: float = 1.0


def _health_poll_s(hc: HealthCheck) -> float:
    """How often a wait reads health: half the health-check interval, within 0.1..1 s."""
    return max(0.1, min(1.0, hc.interval_s / 2))


def blue_green_plan(p: BlueGreenParams) -> Plan:
    """The guide's four phases (DEP-1..DEP-4).

    >>> from deployops.domain.model import HealthCheck, TaskDefinitionSpec
    >>> spec = TaskDefinitionSpec(family="web", version="1.1.0", port=3000)
    >>> plan = blue_green_plan(BlueGreenParams(service="web", spec=spec,
    ...     health_check=HealthCheck(), desired_count=4, active_colour="blue", has_active=True))
    >>> [s.kind for s in plan.steps][:3]
    ['RegisterTaskDefinition', 'CreateTargetGroup', 'StartService']
    """
    new = other_colour(p.active_colour) if p.has_active else p.active_colour
    old = p.active_colour
    new_tg, old_tg = target_group(p.service, new), target_group(p.service, old)
    new_svc, old_svc = new_tg, old_tg
    steps: list[Step] = [
        RegisterTaskDefinition(spec=p.spec),
        CreateTargetGroup(target_group=new_tg, health_check=p.health_check),
        StartService(service=new_svc, target_group=new_tg, desired_count=p.desired_count),
        WaitHealthy(
            service=new_svc,
            target_group=new_tg,
            desired_count=p.desired_count,
            timeout_s=p.health_timeout_s,
            interval_s=_health_poll_s(p.health_check),
        ),
        SmokeTest(listener=test_listener(p.service), target_group=new_tg, checks=p.smoke_checks),
        SwitchListener(
            listener=prod_listener(p.service), target_group=new_tg, previous_target_group=old_tg
        ),
        CheckTrafficMoved(
            listener=prod_listener(p.service),
            target_group=new_tg,
            previous_target_group=old_tg,
            health_path=p.health_check.path,
        ),
    ]
    if p.stability_window_s > 0:
        steps.append(
            Observe(
                service=new_svc,
                target_group=new_tg,
                baseline_target_group=old_tg if p.has_active else "",
                window_s=p.stability_window_s,
                interval_s=p.sample_interval_s,
                max_error_rate=p.max_error_rate,
            )
        )
    notes: list[str] = []
    if p.has_active:
        steps.append(ScaleService(service=old_svc, desired_count=0))
        steps.append(
            ScheduleDeleteTargetGroup(target_group=old_tg, after_s=p.target_group_retention_s)
        )
    else:
        notes.append("first deployment: nothing to switch away from or clean up")
    return Plan(
        strategy="blue-green",
        steps=tuple(steps),
        target_group=new_tg,
        previous_target_group=old_tg if p.has_active else "",
        notes=tuple(notes),
    )


@dataclass(frozen=True, slots=True)
class RollingParams:
    service: str
    spec: TaskDefinitionSpec
    health_check: HealthCheck
    desired_count: int
    active_colour: str
    has_active: bool
    maximum_percent: int = 200
    minimum_healthy_percent: int = 100
    health_timeout_s: float = 60.0
    stability_window_s: float = 300.0
    sample_interval_s: float = 10.0
    max_error_rate: float = 1.0
    smoke_checks: tuple[tuple[str, int], ...] = (("/health", 200),)


def rolling_plan(p: RollingParams) -> Plan:
    """Rolling update in place (IAC-4): up to ``maximum_percent`` running, never below
    ``minimum_healthy_percent`` healthy. A first deployment starts the service instead."""
    tg = target_group(p.service, p.active_colour)
    svc = tg
    steps: list[Step] = [RegisterTaskDefinition(spec=p.spec)]
    if p.has_active:
        steps.append(
            RollingUpdate(
                service=svc,
                target_group=tg,
                desired_count=p.desired_count,
                maximum_percent=p.maximum_percent,
                minimum_healthy_percent=p.minimum_healthy_percent,
                timeout_s=p.health_timeout_s * max(1, p.desired_count),
            )
        )
    else:
        steps += [
            CreateTargetGroup(target_group=tg, health_check=p.health_check),
            StartService(service=svc, target_group=tg, desired_count=p.desired_count),
            WaitHealthy(
                service=svc,
                target_group=tg,
                desired_count=p.desired_count,
                timeout_s=p.health_timeout_s,
                interval_s=_health_poll_s(p.health_check),
            ),
            SmokeTest(listener=test_listener(p.service), target_group=tg, checks=p.smoke_checks),
            SwitchListener(
                listener=prod_listener(p.service), target_group=tg, previous_target_group=""
            ),
        ]
    if p.stability_window_s > 0:
        steps.append(
            Observe(
                service=svc,
                target_group=tg,
                baseline_target_group="",
                window_s=p.stability_window_s,
                interval_s=p.sample_interval_s,
                max_error_rate=p.max_error_rate,
            )
        )
    return Plan(strategy="rolling", steps=tuple(steps), target_group=tg, previous_target_group="")


# The strategies that shift production in weighted steps.
SHIFT_STRATEGIES = ("canary", "linear")


@dataclass(frozen=True, slots=True)
class ShiftParams:
    """A canary or linear deployment: blue-green's phases 1-2, then production shifted to
    the new colour in ``steps`` (percent, the last 100), each step baked for ``bake_s``."""

    blue_green: BlueGreenParams
    strategy: str  # "canary" | "linear"
    steps: tuple[int, ...]
    bake_s: float


def shift_plan(p: ShiftParams) -> Plan:
    """Phases 1-2 of blue-green (green started at full count, health, smoke checks through
    the test listener), then per step below 100 % a stored, resumable shift and its bake,
    then the switch to 100 % and blue-green's tail (observe, previous colour to 0, its target
    group deleted after the retention).

    >>> from deployops.domain.model import HealthCheck, TaskDefinitionSpec
    >>> spec = TaskDefinitionSpec(family="web", version="1.1.0", port=3000)
    >>> bg = BlueGreenParams(service="web", spec=spec, health_check=HealthCheck(),
    ...     desired_count=4, active_colour="blue", has_active=True)
    >>> plan = shift_plan(ShiftParams(bg, "canary", (5, 50, 100), 60.0))
    >>> [s.describe() for s in plan.steps if isinstance(s, ShiftTraffic)]
    ['shift 5% of web-prod to web-green (95% stays on web-blue)', \
'shift 50% of web-prod to web-green (50% stays on web-blue)']
    """
    if p.strategy not in SHIFT_STRATEGIES:
        raise ValueError(f"not a shift strategy: {p.strategy!r}")
    base = blue_green_plan(p.blue_green)
    if not p.blue_green.has_active:
        # Nothing serves production yet: nothing to compare with, nobody to protect.
        return dataclasses.replace(
            base,
            strategy=p.strategy,
            notes=(
                *base.notes,
                f"first deployment: no previous version to shift from; {p.strategy} "
                "deploys it like blue-green",
            ),
        )
    bg = p.blue_green
    switch_at = next(i for i, s in enumerate(base.steps) if isinstance(s, SwitchListener))
    prod, new_tg, old_tg = prod_listener(bg.service), base.target_group, base.previous_target_group
    shifts: list[Step] = []
    for percent in p.steps:
        if percent >= 100:
            break
        shifts.append(
            ShiftTraffic(
                listener=prod, target_group=new_tg, previous_target_group=old_tg, percent=percent
            )
        )
        shifts.append(
            Bake(
                service=new_tg,
                target_group=new_tg,
                baseline_target_group=old_tg,
                percent=percent,
                window_s=p.bake_s,
                interval_s=bg.sample_interval_s,
                max_error_rate=bg.max_error_rate,
            )
        )
    steps = (*base.steps[:switch_at], *shifts, *base.steps[switch_at:])
    return dataclasses.replace(base, strategy=p.strategy, steps=steps)
