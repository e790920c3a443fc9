"""Operations started through the API: a deploy, a rollback or a resume that the controller
runs in a worker thread (through the engine's operation runner) while the request returns at
once (202) with the operation's id.

The request waits only until the runner has taken the lock and recorded the operation (or it
was refused: bad input is 422, a held lock is 409 naming the holder); the rest runs in the
background. The id is the runner's own (``dep-...``), so the operation, its steps and its
events are in the store like any other, whoever started it; this module only keeps the worker
threads of this process.

    ops = Operations(engine=engine, clock=clock)
    op = ops.deploy(DeployRequest(service="web", version="1.4.0", owner="api:ci"))
    op.id  # dep-...; op.status: running | succeeded | failed | rolled_back
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from deployops.clock import Clock
from deployops.errors import DeployopsError, RolledBackError

if TYPE_CHECKING:
    from deployops.engine.deploy import Deployer, DeployRequest
    from deployops.engine.events import Reporter
    from deployops.engine.planning.rollback import RollbackPlan
    from deployops.store import EventRecord

__all__ = ["Engine", "Operation", "Operations"]


class Engine(Protocol):
    """Builds a deployer for one operation (its own platform connections, closed after)."""

    def deployer(self, reporter: Reporter) -> AbstractContextManager[Deployer]: ...


@dataclass
class Operation:
    """The worker thread of one operation; ``id`` is the runner's operation id once recorded."""

    kind: str  # deploy | rollback | resume
    service: str
    actor: str
    created_at: datetime
    id: str = ""
    status: str = "starting"  # starting | running | succeeded | failed | rolled_back | refused
    error: str = ""
    finished_at: datetime | None = None
    started: threading.Event = field(default_factory=threading.Event, repr=False)
    done: threading.Event = field(default_factory=threading.Event, repr=False)
    failure: DeployopsError | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "service": self.service,
            "actor": self.actor,
            "status": self.status,
            "deployment_id": self.id,
            "error": self.error,
            "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


class Operations:
    """The operations of this controller process, newest last."""

    def __init__(self, *, engine: Engine, clock: Clock, start_timeout_s: float = 60.0) -> None:
        self.engine = engine
        self.clock = clock
        self.start_timeout_s = start_timeout_s
        self._ops: dict[str, Operation] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ queries
    def get(self, op_id: str) -> Operation | None:
        with self._lock:
            return self._ops.get(op_id)

    def all(self) -> list[Operation]:
        with self._lock:
            return list(self._ops.values())

    def running(self) -> list[Operation]:
        return [o for o in self.all() if not o.done.is_set()]

    def join(self, timeout: float | None = None) -> None:
        """Wait for every operation to end (shutdown, tests)."""
        for op in self.all():
            op.done.wait(timeout)

    # ------------------------------------------------------------------ starting
    def deploy(self, request: DeployRequest) -> Operation:
        def run(deployer: Deployer) -> Any:
            return deployer.deploy(request)

        return self._start("deploy", request.service, request.owner, run)

    def rollback(
        self, deployment_id: str, *, actor: str, service: str, force: bool, reason: str
    ) -> Operation:
        from deployops.engine.planning.rollback import plan_rollback, run_rollback

        def run(deployer: Deployer) -> Any:
            rb = plan_rollback(deployer, deployment_id)
            return run_rollback(deployer, rb, owner=actor, force=force, reason=reason)

        return self._start("rollback", service, actor, run)

    def resume(self, deployment_id: str, *, actor: str, service: str) -> Operation:
        from deployops.wiring import owner_alive

        def run(deployer: Deployer) -> Any:
            return deployer.resume(deployment_id, owner=actor, owner_alive=owner_alive)

        return self._start("resume", service, actor, run, operation_id=deployment_id)

    def preview_rollback(self, deployment_id: str) -> RollbackPlan:
        from deployops.engine.events import null_reporter
        from deployops.engine.planning.rollback import plan_rollback

        with self.engine.deployer(null_reporter) as deployer:
            return plan_rollback(deployer, deployment_id)

    def _start(
        self,
        kind: str,
        service: str,
        actor: str,
        run: Callable[[Deployer], Any],
        *,
        operation_id: str | None = None,
    ) -> Operation:
        op = Operation(kind=kind, service=service, actor=actor, created_at=self.clock.now())

        def reporter(event: EventRecord) -> None:
            if event.kind.endswith((".started", ".resumed")) and not op.started.is_set():
                op.id = operation_id or event.deployment_id or ""
                op.status = "running"
                with self._lock:
                    self._ops[op.id] = op
                op.started.set()

        thread = threading.Thread(
            target=self._run, args=(op, run, reporter), name=f"operation-{op.id}", daemon=True
        )
        thread.start()
        op.started.wait(self.start_timeout_s)
        if op.failure is not None and not op.id:
            # refused before anything was recorded: bad input or a held lock
            raise op.failure
        return op

    def _run(self, op: Operation, run: Callable[[Deployer], Any], reporter: Reporter) -> None:
        try:
            with self.engine.deployer(reporter) as deployer:
                rec = run(deployer)
            op.status = str(getattr(rec, "status", "succeeded"))
        except RolledBackError as exc:
            op.status, op.error = "rolled_back", exc.message
        except DeployopsError as exc:
            op.failure = exc
            op.error = exc.message
            op.status = "failed" if op.id else "refused"
        except Exception as exc:  # noqa: BLE001 - a worker thread must record, not vanish
            op.error = f"{type(exc).__name__}: {exc}"
            op.status = "failed"
            op.failure = DeployopsError(f"internal error: {op.error}")
        finally:
            op.finished_at = self.clock.now()
            op.started.set()
            op.done.set()

    def iter_running(self) -> Iterator[Operation]:
        yield from self.running()
