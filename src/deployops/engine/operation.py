"""The small, stable API of the operation runner: what a step handler sees and returns.

An *operation* (deploy, rollback, restore, drill, rotate, gate) is a frozen
:class:`~deployops.domain.plan.Plan` run by :class:`deployops.engine.runner.Runner`. An
operation kind brings three things, nothing else:

1. a **planner** that turns a request into a ``Plan`` (steps plus every setting they need, in
   ``Plan.settings``), changing nothing;
2. **step handlers**, one per step type, registered in a :class:`HandlerTable`;
3. an :class:`OperationKind`: its name, its id prefix and what a failure does.

A handler is ``handler(step, ctx) -> dict``: it acts through ``ctx.ports``, reads frozen
settings from ``ctx.plan.settings``, earlier results from ``ctx.results``, and returns its own
result (stored as the step's outcome; a resumed run gets it back in ``ctx.results``). It raises
a :class:`~deployops.errors.DeployopsError` to fail the step. Handlers are idempotent: a step
interrupted half-way runs again on resume.

>>> table = HandlerTable()
>>> table.register(SwitchListener, switch_listener)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

from deployops.clock import Clock
from deployops.domain.plan import Plan, Step
from deployops.engine.events import Notice, Notify, Reporter, null_reporter
from deployops.errors import DeploymentError, DeployopsError
from deployops.ports import Compute, Metrics, Prober, Traffic
from deployops.store import EventRecord, OperationRecord, StateStore

__all__ = [
    "REVERT_DETAIL",
    "Env",
    "FailureHandler",
    "HandlerTable",
    "NewOperation",
    "OperationKind",
    "Ports",
    "RevertPlanner",
    "StepContext",
    "StepHandler",
    "stop_on_failure",
]

_T = TypeVar("_T")
_S = TypeVar("_S", bound=Step, contravariant=True)


@dataclass(frozen=True, slots=True)
class Ports:
    """The platform a handler acts on. ``extra`` carries ports other kinds need (a backup
    repository, a secret store), looked up by their protocol type with :meth:`get`."""

    compute: Compute
    traffic: Traffic
    metrics: Metrics
    prober: Prober
    extra: Mapping[type[Any], object] = field(default_factory=dict)

    def get(self, kind: type[_T]) -> _T:
        """The port of type ``kind`` (``ports.get(BackupRepository)``)."""
        for port in (self.compute, self.traffic, self.metrics, self.prober):
            if isinstance(port, kind):
                return port
        try:
            return cast(_T, self.extra[kind])
        except KeyError:
            raise DeploymentError(
                f"this platform has no {kind.__name__} port",
                hint="check the environment's platform in deployops.yaml",
            ) from None


@dataclass(frozen=True, slots=True)
class Env:
    """What every operation runs in: ports, store, clock and the two ways out (live
    progress to the ``reporter``, stakeholder notices to ``notify``)."""

    ports: Ports
    store: StateStore
    clock: Clock
    reporter: Reporter = null_reporter
    notify: Notify | None = None
    # A test-only fault point (the reliability suite's crash matrix): called with the kind,
    # the step's index and where in the step the runner is; None in production.
    crash_point: Callable[[str, int, str], None] | None = None

    def send(self, notice: Notice) -> None:
        """Deliver a notice; a channel that fails never fails the operation (MON-2)."""
        if self.notify is None:
            return
        try:
            self.notify(notice)
        except Exception as exc:  # noqa: BLE001 - a channel must never break an operation
            self.store.add_event(
                EventRecord(
                    ts=self.clock.now(),
                    kind="notify.failed",
                    level="warning",
                    message=f"notification failed: {type(exc).__name__}",
                )
            )


@dataclass
class StepContext:
    """One run of one operation, as its handlers see it."""

    env: Env
    kind: OperationKind
    op: OperationRecord
    plan: Plan
    results: dict[str, Any] = field(default_factory=dict)
    # Notices held back until traffic is safe (a rollback flips first, then tells people).
    pending: list[Notice] = field(default_factory=list)
    # What a failing step leaves for the failure handler (the verdict that caused it, ...).
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def ports(self) -> Ports:
        return self.env.ports

    @property
    def clock(self) -> Clock:
        return self.env.clock

    @property
    def store(self) -> StateStore:
        return self.env.store

    @property
    def settings(self) -> Mapping[str, Any]:
        """The settings frozen into the plan when it was made."""
        return self.plan.settings

    def refresh(self) -> OperationRecord:
        self.op = self.store.get_operation(self.op.id) or self.op
        return self.op

    def update_detail(self, **detail: Any) -> None:
        """Record what the kind keeps about the operation (a deploy's task definition)."""
        self.store.update_operation(self.op.id, detail=detail, updated_at=self.clock.now())

    def event(
        self,
        kind: str,
        message: str,
        *,
        level: str = "info",
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Store an event of this operation and show it live."""
        ev = EventRecord(
            ts=self.clock.now(),
            kind=kind,
            message=message,
            level=level,
            deployment_id=self.op.id,
            environment=self.op.environment,
            service=self.op.target,
            data=dict(data or {}),
        )
        self.store.add_event(ev)
        self.env.reporter(ev)

    def progress(self, message: str, seconds_left: float, **data: Any) -> None:
        """A live progress line (not stored): what is being waited for and how long."""
        self.env.reporter(
            EventRecord(
                ts=self.clock.now(),
                kind="progress",
                message=message,
                deployment_id=self.op.id,
                environment=self.op.environment,
                service=self.op.target,
                data={"seconds_left": round(seconds_left, 1), **data},
            )
        )

    def send(self, notice: Notice) -> None:
        self.env.send(notice)


class StepHandler(Protocol[_S]):
    """Runs one step type: acts, and returns its result (JSON values)."""

    def __call__(self, step: _S, ctx: StepContext, /) -> dict[str, Any]: ...


class HandlerTable:
    """Step handlers by step type: adding a step type is one handler and one registration.

    >>> table = HandlerTable()
    >>> table.register(ScaleService, scale_service)  # doctest: +SKIP
    >>> table.handler_for(ScaleService(service="web-blue", desired_count=0))  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._handlers: dict[type[Step], StepHandler[Any]] = {}

    def register(self, step_type: type[_T], handler: StepHandler[Any]) -> None:
        if not (isinstance(step_type, type) and issubclass(step_type, Step)):
            raise TypeError(f"{step_type!r} is not a step type")
        if step_type in self._handlers:
            raise ValueError(f"a handler for {step_type.__name__} is registered already")
        self._handlers[step_type] = handler

    def handler_for(self, step: Step) -> StepHandler[Any]:
        try:
            return self._handlers[type(step)]
        except KeyError:
            raise DeploymentError(
                f"no handler for step {step.kind}",
                hint="register one with HandlerTable.register (docs/architecture.md)",
            ) from None

    def __contains__(self, step_type: object) -> bool:
        return step_type in self._handlers

    def merged(self, other: HandlerTable) -> HandlerTable:
        """A table with the handlers of both (an operation kind adds its own to a base)."""
        out = HandlerTable()
        for table in (self, other):
            for step_type, handler in table._handlers.items():
                out.register(step_type, handler)
        return out


class FailureHandler(Protocol):
    """What a failed step does to the operation. It finishes the operation's record (status,
    error, notices) and raises the error the user sees; it never returns normally."""

    def __call__(self, ctx: StepContext, step: Step, exc: DeployopsError, /) -> OperationRecord: ...


def stop_on_failure(ctx: StepContext, step: Step, exc: DeployopsError) -> OperationRecord:
    """The default: stop at the first failed step (DEP-7), record it, tell people, raise."""
    now = ctx.clock.now()
    ctx.store.update_operation(
        ctx.op.id, status="failed", error=exc.message, updated_at=now, finished_at=now
    )
    ctx.event(f"{ctx.kind.events}.failed", exc.message, level="error")
    for notice in ctx.pending:
        ctx.send(notice)
    ctx.pending.clear()
    ctx.send(
        Notice(
            severity="warning",
            kind=f"{ctx.kind.name}.failed",
            title=f"{ctx.kind.name} of {ctx.op.target} failed in {ctx.op.environment}",
            text=exc.message,
            dedup_key=ctx.op.id,
            fields={"operation": ctx.op.id, "failed_step": step.kind},
        )
    )
    raise DeploymentError(
        f"{ctx.op.id}: {ctx.kind.name} of {ctx.op.target} failed at {step.kind}: {exc.message}",
        hint=exc.hint or f"`deployops deployments show {ctx.op.id}` has the steps",
    ) from exc


class RevertPlanner(Protocol):
    """Plans the revert steps after step ``failed`` (its index in ``ctx.plan.steps``) failed
    with ``exc``. Pure: it reads the plan and what the steps stored, changes nothing."""

    def __call__(self, ctx: StepContext, failed: int, exc: DeployopsError, /) -> Sequence[Step]: ...


# Where an operation that is putting things back keeps it (in ``detail``): the failed step's
# index and error, and the index of the first revert step.
REVERT_DETAIL = "revert"


@dataclass(frozen=True, slots=True)
class OperationKind:
    """One kind of operation. ``events`` prefixes its events (``deploy.started``);
    ``on_failure`` is what a failed step does; ``on_success`` may send a notice;
    ``before_resume`` makes the platform safe before a resumed run continues."""

    name: str
    id_prefix: str = "op"
    events: str = ""
    on_failure: FailureHandler = stop_on_failure
    on_success: Callable[[StepContext], None] | None = None
    before_resume: Callable[[StepContext], None] | None = None
    describe: Callable[[OperationRecord], str] | None = None
    # The steps that put back what the failed step and those before it did (a rotation's
    # revert path): stored and run by the runner like the plan's own, so ``resume`` finishes
    # them. Afterwards ``on_failure`` runs with ``ctx.state["reverted"]``; a revert step that
    # fails goes to ``on_failure`` with ``ctx.state["revert_failed"]``. None: no revert steps.
    revert: RevertPlanner | None = None

    def __post_init__(self) -> None:
        if not self.events:
            object.__setattr__(self, "events", self.name)


@dataclass(frozen=True, slots=True)
class NewOperation:
    """What :meth:`Runner.start` needs: the kind, where, what, who, and the frozen plan."""

    kind: OperationKind
    environment: str
    target: str
    owner: str
    plan: Plan
    detail: Mapping[str, Any] = field(default_factory=dict)
    reverts: str | None = None
    summary: str = ""  # one line for the lock and the started event
    # An id made by the caller (``new_id(kind.id_prefix, now)``) when the plan names things
    # after its operation (a restore's new database instance); empty: the runner makes one.
    operation_id: str = ""
