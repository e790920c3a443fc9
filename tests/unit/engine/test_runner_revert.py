"""A kind that puts things back as steps (``OperationKind.revert``, docs/architecture.md): the
runner stores the revert steps after the plan's own and runs them like any step; ``resume``
of an operation killed while reverting continues the revert, never the failed step; a revert
step that fails reaches the kind's failure handler flagged as such."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from deployops.domain.plan import Plan, Step, register_step_type
from deployops.drivers.memory import MemoryCompute, MemoryProber
from deployops.engine.operation import (
    Env,
    HandlerTable,
    NewOperation,
    OperationKind,
    Ports,
    StepContext,
)
from deployops.engine.runner import Runner
from deployops.errors import DeploymentError, DeployopsError
from deployops.store import OperationRecord
from tests.support.memory_rig import Rig


@register_step_type
@dataclass(frozen=True, slots=True)
class ApplyChange(Step):
    phase: ClassVar[str] = "apply"
    n: int


@register_step_type
@dataclass(frozen=True, slots=True)
class UndoChange(Step):
    phase: ClassVar[str] = "revert"
    n: int


class Ledger:
    def __init__(self) -> None:
        self.applied: list[int] = []
        self.fail_apply: int | None = None
        self.kill_undo: int | None = None
        self.fail_undo: int | None = None
        self.runs: list[str] = []


class Killed(BaseException):
    """Stands in for kill -9 in the middle of a step."""


def apply_change(step: ApplyChange, ctx: StepContext) -> dict[str, Any]:
    ledger = ctx.ports.get(Ledger)
    ledger.runs.append(f"apply {step.n}")
    if step.n not in ledger.applied:
        ledger.applied.append(step.n)  # acts, then fails: the revert must undo it too
    if ledger.fail_apply == step.n:
        raise DeploymentError(f"change {step.n} did not take")
    return {}


def undo_change(step: UndoChange, ctx: StepContext) -> dict[str, Any]:
    ledger = ctx.ports.get(Ledger)
    ledger.runs.append(f"undo {step.n}")
    if ledger.kill_undo == step.n:
        ledger.kill_undo = None
        raise Killed
    if ledger.fail_undo == step.n:
        raise DeploymentError(f"cannot undo {step.n}")
    if step.n in ledger.applied:
        ledger.applied.remove(step.n)
    return {}


def plan_undo(ctx: StepContext, failed: int, _exc: DeployopsError) -> Sequence[Step]:
    done = [s for s in ctx.plan.steps[: failed + 1] if isinstance(s, ApplyChange)]
    return [UndoChange(n=s.n) for s in reversed(done)]


seen: list[dict[str, Any]] = []


def failed(ctx: StepContext, step: Step, exc: DeployopsError) -> OperationRecord:
    seen.append({"step": step.kind, "error": exc.message, **ctx.state})
    status = "rolled_back" if ctx.state.get("reverted") else "running"
    now = ctx.clock.now()
    ctx.store.update_operation(ctx.op.id, status=status, updated_at=now)
    raise DeploymentError(f"{step.kind}: {exc.message}")


CHANGE = OperationKind(name="change", id_prefix="chg", on_failure=failed, revert=plan_undo)
HANDLERS = HandlerTable()
HANDLERS.register(ApplyChange, apply_change)
HANDLERS.register(UndoChange, undo_change)


def runner_for(rig: Rig, ledger: Ledger) -> Runner:
    ports = Ports(
        compute=MemoryCompute(cloud=rig.cloud),
        traffic=rig.traffic,
        metrics=rig.metrics,
        prober=MemoryProber(cloud=rig.cloud),
        extra={Ledger: ledger},
    )
    return Runner(env=Env(ports=ports, store=rig.store, clock=rig.clock), handlers=HANDLERS)


def start(runner: Runner) -> Any:
    plan = Plan(
        strategy="change",
        steps=tuple(ApplyChange(n=n) for n in (1, 2, 3, 4)),
        target_group="",
        previous_target_group="",
    )
    return runner.start(
        NewOperation(kind=CHANGE, environment="staging", target="db", owner="ops@h:1", plan=plan)
    )


def test_a_failed_step_is_put_back_by_stored_revert_steps(rig: Rig) -> None:
    seen.clear()
    ledger = Ledger()
    ledger.fail_apply = 3
    with pytest.raises(DeploymentError, match="ApplyChange: change 3 did not take"):
        start(runner_for(rig, ledger))
    assert ledger.applied == []
    assert ledger.runs == ["apply 1", "apply 2", "apply 3", "undo 3", "undo 2", "undo 1"]
    [op] = rig.store.list_operations(kinds=["change"])
    assert op.status == "rolled_back" and op.phase == "revert"
    assert op.detail["revert"]["failed_seq"] == 2 and op.detail["revert"]["first_seq"] == 4
    steps = [(s.seq, s.name, s.status) for s in rig.store.steps_for(op.id)]
    assert steps == [
        (0, "ApplyChange", "succeeded"),
        (1, "ApplyChange", "succeeded"),
        (2, "ApplyChange", "failed"),
        (4, "UndoChange", "succeeded"),
        (5, "UndoChange", "succeeded"),
        (6, "UndoChange", "succeeded"),
    ]
    assert len(op.plan["steps"]) == 7  # the stored plan holds the revert steps
    assert seen == [{"step": "ApplyChange", "error": "change 3 did not take", "reverted": True}]
    assert [e.kind for e in rig.store.events(deployment_id=op.id)].count("change.reverting") == 1


def test_resume_of_an_operation_killed_while_reverting_continues_the_revert(rig: Rig) -> None:
    seen.clear()
    ledger = Ledger()
    ledger.fail_apply = 2
    ledger.kill_undo = 1
    with pytest.raises(Killed):
        start(runner_for(rig, ledger))
    [op] = rig.store.list_operations(kinds=["change"])
    assert op.status == "running" and ledger.applied == [1]
    ledger.runs.clear()
    with pytest.raises(DeploymentError, match="change 2 did not take"):
        runner_for(rig, ledger).resume(
            op.id, kinds={"change": CHANGE}, owner="ops@h:2", owner_alive=lambda _o: False
        )
    assert ledger.runs == ["undo 1"]  # not "apply 2" again, nor the undo already done
    assert ledger.applied == []
    assert seen[-1]["reverted"] is True
    assert rig.store.get_operation(op.id).status == "rolled_back"  # type: ignore[union-attr]
    assert rig.store.get_lock("staging/db") is None


def test_a_revert_step_that_fails_is_flagged_and_resumable(rig: Rig) -> None:
    seen.clear()
    ledger = Ledger()
    ledger.fail_apply = 2
    ledger.fail_undo = 1
    with pytest.raises(DeploymentError, match="UndoChange: cannot undo 1"):
        start(runner_for(rig, ledger))
    assert seen == [{"step": "UndoChange", "error": "cannot undo 1", "revert_failed": True}]
    [op] = rig.store.list_operations(kinds=["change"])
    assert op.status == "running"
    ledger.fail_undo = None
    ledger.runs.clear()
    with pytest.raises(DeploymentError, match="change 2 did not take"):
        runner_for(rig, ledger).resume(
            op.id, kinds={"change": CHANGE}, owner="ops@h:2", owner_alive=lambda _o: False
        )
    assert ledger.runs == ["undo 1"] and ledger.applied == []
