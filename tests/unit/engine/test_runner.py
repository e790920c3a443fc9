"""The generic operation runner with a kind of its own (as docs/architecture.md shows how to
add one): lock per (environment, target), intent and outcome stored, results passed on,
the first failure stops the plan, resume continues at the first unfinished step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from deployops.domain.names import lock_key
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
from deployops.errors import DeploymentError, DeployopsError, LockHeldError
from tests.support.memory_rig import Rig


@register_step_type
@dataclass(frozen=True, slots=True)
class TakeSnapshot(Step):
    phase: ClassVar[str] = "prepare"
    database: str


@register_step_type
@dataclass(frozen=True, slots=True)
class RestoreSnapshot(Step):
    phase: ClassVar[str] = "restore"
    database: str
    snapshot: str = "@snapshot"  # filled from TakeSnapshot's result


class Vault:
    """A port the runner knows nothing about, reached through ``ctx.ports.get``."""

    def __init__(self) -> None:
        self.snapshots: list[str] = []
        self.restored: list[str] = []
        self.fail_restore = False
        self.kill_restore = False


class Killed(BaseException):
    """Stands in for kill -9 in the middle of a step (nothing after it runs)."""


def take_snapshot(step: TakeSnapshot, ctx: StepContext) -> dict[str, Any]:
    vault = ctx.ports.get(Vault)
    name = f"{step.database}-{len(vault.snapshots) + 1}"
    vault.snapshots.append(name)
    return {"snapshot": name}


def restore_snapshot(step: RestoreSnapshot, ctx: StepContext) -> dict[str, Any]:
    vault = ctx.ports.get(Vault)
    if vault.kill_restore:
        raise Killed
    if vault.fail_restore:
        raise DeploymentError(f"cannot restore {step.snapshot}", hint="check the vault")
    vault.restored.append(step.snapshot)
    return {"restored": step.snapshot, "timeout": ctx.settings["timeout_s"]}


RESTORE = OperationKind(name="restore", id_prefix="rst")
HANDLERS = HandlerTable()
HANDLERS.register(TakeSnapshot, take_snapshot)
HANDLERS.register(RestoreSnapshot, restore_snapshot)


def plan_restore(database: str) -> Plan:
    return Plan(
        strategy="restore",
        steps=(TakeSnapshot(database=database), RestoreSnapshot(database=database)),
        target_group="",
        previous_target_group="",
        settings={"timeout_s": 30.0},
    )


def runner_for(rig: Rig, vault: Vault) -> Runner:
    ports = Ports(
        compute=MemoryCompute(cloud=rig.cloud),
        traffic=rig.traffic,
        metrics=rig.metrics,
        prober=MemoryProber(cloud=rig.cloud),
        extra={Vault: vault},
    )
    return Runner(
        env=Env(ports=ports, store=rig.store, clock=rig.clock, reporter=rig.events.append),
        handlers=HANDLERS,
    )


def start(runner: Runner, owner: str = "ops@host:1") -> Any:
    return runner.start(
        NewOperation(
            kind=RESTORE,
            environment="staging",
            target="orders-db",
            owner=owner,
            plan=plan_restore("orders-db"),
        )
    )


def test_a_new_kind_runs_its_steps_with_intent_outcome_and_results(rig: Rig) -> None:
    vault = Vault()
    op = start(runner_for(rig, vault))
    assert op.status == "succeeded" and op.kind == "restore" and op.id.startswith("rst-")
    assert vault.restored == ["orders-db-1"]  # @snapshot came from the first step's result
    steps = rig.store.steps_for(op.id)
    assert [(s.name, s.status) for s in steps] == [
        ("TakeSnapshot", "succeeded"),
        ("RestoreSnapshot", "succeeded"),
    ]
    assert steps[1].params["snapshot"] == "orders-db-1"
    assert steps[1].result == {"restored": "orders-db-1", "timeout": 30.0}
    kinds = [e.kind for e in rig.store.events(deployment_id=op.id)]
    assert kinds[0] == "restore.started" and kinds[-1] == "restore.succeeded"
    assert rig.store.get_lock(lock_key("staging", "orders-db")) is None
    # Not a deployment: `deployops deployments` does not list it.
    assert rig.store.get_deployment(op.id) is None
    assert rig.store.list_deployments() == []


def test_the_first_failure_stops_the_plan_and_releases_the_lock(rig: Rig) -> None:
    vault = Vault()
    vault.fail_restore = True
    with pytest.raises(DeploymentError, match="failed at RestoreSnapshot: cannot restore"):
        start(runner_for(rig, vault))
    (op,) = rig.store.list_operations(kinds=["restore"])
    assert op.status == "failed" and "cannot restore orders-db-1" in op.error
    assert [s.status for s in rig.store.steps_for(op.id)] == ["succeeded", "failed"]
    assert rig.store.get_lock(lock_key("staging", "orders-db")) is None


def test_a_held_lock_refuses_the_operation_and_records_why(rig: Rig) -> None:
    key = lock_key("staging", "orders-db")
    rig.store.acquire_lock(key, owner="alice@ci:7", reason="restore", now=rig.clock.now())
    with pytest.raises(LockHeldError):
        start(runner_for(rig, Vault()))
    assert rig.store.list_operations(kinds=["restore"]) == []
    refused = [e for e in rig.store.events() if e.kind == "restore.refused"]
    assert len(refused) == 1 and "alice@ci:7" in refused[0].message


def test_resume_after_a_kill_continues_at_the_unfinished_step(rig: Rig) -> None:
    vault = Vault()
    vault.kill_restore = True
    with pytest.raises(Killed):
        start(runner_for(rig, vault), owner="ops@host:1")
    (op,) = rig.store.list_operations(kinds=["restore"])
    assert op.status == "running"
    # kill -9 leaves the lock behind with its dead owner.
    rig.store.acquire_lock(
        lock_key("staging", "orders-db"), owner="ops@host:1", reason="restore", now=rig.clock.now()
    )
    vault.kill_restore = False
    rig.clock.advance(5)
    done = runner_for(rig, vault).resume(
        op.id, kinds={"restore": RESTORE}, owner="ops@host:2", owner_alive=lambda _o: False
    )
    assert done.status == "succeeded"
    assert vault.snapshots == ["orders-db-1"]  # the finished step did not run again
    assert vault.restored == ["orders-db-1"]  # its result was handed to the resumed one
    assert rig.store.get_lock(lock_key("staging", "orders-db")) is None


def test_resume_refuses_while_the_owner_still_runs(rig: Rig) -> None:
    vault = Vault()
    vault.kill_restore = True
    with pytest.raises(Killed):
        start(runner_for(rig, vault))
    (op,) = rig.store.list_operations(kinds=["restore"])
    rig.store.acquire_lock(
        lock_key("staging", "orders-db"), owner="ops@host:1", reason="x", now=rig.clock.now()
    )
    with pytest.raises(LockHeldError):
        runner_for(rig, vault).resume(
            op.id, kinds={"restore": RESTORE}, owner="ops@host:2", owner_alive=lambda _o: True
        )


def test_a_step_type_without_a_handler_fails_the_step_by_name(rig: Rig) -> None:
    runner = Runner(env=runner_for(rig, Vault()).env, handlers=HandlerTable())
    with pytest.raises(DeployopsError, match="no handler for step TakeSnapshot"):
        start(runner)


def test_a_handler_is_registered_once_per_step_type() -> None:
    table = HandlerTable()
    table.register(TakeSnapshot, take_snapshot)
    with pytest.raises(ValueError, match="registered already"):
        table.register(TakeSnapshot, take_snapshot)
    with pytest.raises(TypeError):
        table.register(int, take_snapshot)
    both = table.merged(HandlerTable())
    assert TakeSnapshot in both and RestoreSnapshot not in both
    with pytest.raises(ValueError, match="registered already"):
        table.merged(HANDLERS)  # the two tables disagree on who handles TakeSnapshot
