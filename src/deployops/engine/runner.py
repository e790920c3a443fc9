"""The one runner of every operation: lock, intent and outcome, events, resume.

It knows no step type. For each step of a frozen plan it stores the intent, looks the handler
up by the step's type (:class:`~deployops.engine.operation.HandlerTable`), runs it and stores
the outcome; the first failure goes to the kind's failure handler — or, for a kind with
``revert``, first to the steps that put things back, stored after the plan's own and run the
same way. Every run holds the lock of its ``(environment, target)``; ``resume`` takes over the
lock of a dead owner and continues at the first unfinished step (of the revert, when one had
begun) with the results of the finished ones.

>>> runner = Runner(env=env, handlers=table)  # doctest: +SKIP
>>> runner.start(NewOperation(kind=DEPLOY, environment="staging", target="web",
...                           owner=whoami(), plan=plan))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from typing import Any

from deployops.domain.names import lock_key
from deployops.domain.plan import Plan, Step
from deployops.engine.operation import (
    REVERT_DETAIL,
    Env,
    HandlerTable,
    NewOperation,
    OperationKind,
    StepContext,
)
from deployops.errors import (
    ConfigError,
    DeploymentError,
    DeployopsError,
    DriverError,
    LockHeldError,
)
from deployops.ids import new_id
from deployops.store import EventRecord, OperationRecord

__all__ = ["Runner", "resolve_step"]


class Runner:
    """Runs operations of any kind in one environment's platform."""

    def __init__(self, *, env: Env, handlers: HandlerTable) -> None:
        self.env = env
        self.handlers = handlers

    # ------------------------------------------------------------------ refusals
    def refuse(
        self,
        kind: OperationKind,
        *,
        environment: str,
        target: str,
        what: str,
        error: DeployopsError,
    ) -> None:
        """Record a refused request (bad input, lock held): an event, nothing else."""
        self.env.store.add_event(
            EventRecord(
                ts=self.env.clock.now(),
                kind=f"{kind.events}.refused",
                level="warning",
                environment=environment,
                service=target,
                message=f"refused {what}: {error.message}",
                data={"error": type(error).__name__},
            )
        )

    # ------------------------------------------------------------------ start
    def start(self, new: NewOperation) -> OperationRecord:
        """Lock, record and run a plan. Raises what the kind's failure handler raises."""
        store, clock = self.env.store, self.env.clock
        key = lock_key(new.environment, new.target)
        now = clock.now()
        op_id = new.operation_id or new_id(new.kind.id_prefix, now)
        summary = new.summary or f"{new.kind.name} {new.target}"
        try:
            store.acquire_lock(
                key, owner=new.owner, reason=f"{summary} ({op_id})", now=now, deployment_id=op_id
            )
        except LockHeldError as exc:
            self.refuse(
                new.kind, environment=new.environment, target=new.target, what=summary, error=exc
            )
            raise
        try:
            op = OperationRecord(
                id=op_id,
                kind=new.kind.name,
                environment=new.environment,
                target=new.target,
                status="running",
                owner=new.owner,
                reverts=new.reverts,
                plan=new.plan.to_record(),
                detail=dict(new.detail),
                created_at=now,
                updated_at=now,
            )
            store.create_operation(op)
            ctx = StepContext(env=self.env, kind=new.kind, op=op, plan=new.plan)
            ctx.event(
                f"{new.kind.events}.started",
                new.kind.describe(op) if new.kind.describe else f"{summary} started",
                data={"steps": len(new.plan.steps), "plan": new.plan.to_json()},
            )
            done = self._execute_or_say_how_to_resume(ctx, start=0)
        except BaseException:
            self._release_after_failure(key, new.owner)
            raise
        store.release_lock(key, owner=new.owner)
        return done

    # ------------------------------------------------------------------ resume
    def resume(
        self,
        op_id: str,
        *,
        kinds: Mapping[str, OperationKind],
        owner: str,
        owner_alive: Callable[[str], bool],
    ) -> OperationRecord:
        """Continue an interrupted operation from its first unfinished step, with the plan
        (and settings) it was started with."""
        store, clock = self.env.store, self.env.clock
        op = store.find_operation(op_id)
        if op is None:
            raise ConfigError(
                f"no operation {op_id!r}",
                path="DEPLOYMENT_ID",
                hint="`deployops deployments list` shows the ids",
            )
        if op.status != "running":
            raise ConfigError(
                f"{op.id} is {op.status}, not interrupted; nothing to resume",
                path="DEPLOYMENT_ID",
                hint="`deployops deployments list` shows deployments still running",
            )
        kind = kinds.get(op.kind)
        if kind is None:
            raise ConfigError(
                f"{op.id} is a {op.kind} operation, which this command does not resume",
                path="DEPLOYMENT_ID",
                hint=f"known kinds here: {', '.join(sorted(kinds))}",
            )
        key = lock_key(op.environment, op.target)
        held = store.get_lock(key)
        if held is None:
            store.acquire_lock(
                key, owner=owner, reason=f"resume {op.id}", now=clock.now(), deployment_id=op.id
            )
        elif held.owner != owner:
            if owner_alive(held.owner) and store.lock_holder_alive(held):
                raise LockHeldError(
                    key,
                    held.owner,
                    held.reason,
                    held.acquired_at.isoformat(timespec="seconds"),
                    (clock.now() - held.acquired_at).total_seconds(),
                )
            store.transfer_lock(key, new_owner=owner)
        plan = Plan.from_record(op.plan)
        results: dict[str, Any] = {}
        # an operation that was putting things back continues its revert steps
        revert = op.detail.get(REVERT_DETAIL)
        start = int(revert["first_seq"]) if revert else 0
        for s in store.steps_for(op.id):
            if s.seq < start:
                if s.status == "succeeded":
                    results.update(s.result)
                continue
            if s.seq != start or s.status != "succeeded":
                break
            results.update(s.result)
            start = s.seq + 1
        ctx = StepContext(env=self.env, kind=kind, op=op, plan=plan, results=results)
        ctx.event(
            f"{kind.events}.resumed",
            f"resuming {op.id} at step {start + 1} of "
            f"{len(plan.steps)} (previous owner {held.owner if held else 'none'})",
        )
        try:
            if kind.before_resume is not None:
                kind.before_resume(ctx)
            done = self._execute_or_say_how_to_resume(ctx, start=start)
        except BaseException:
            self._release_after_failure(key, owner)
            raise
        store.release_lock(key, owner=owner)
        return done

    def _release_after_failure(self, key: str, owner: str) -> None:
        """Release the lock as an operation fails; a store that cannot be reached must not
        hide why the operation failed (the lock of a dead owner is taken over by resume)."""
        with contextlib.suppress(DriverError):
            self.env.store.release_lock(key, owner=owner)

    # ------------------------------------------------------------------ the loop
    def _execute_or_say_how_to_resume(self, ctx: StepContext, *, start: int) -> OperationRecord:
        """An unreachable state store stops the operation where it is (nothing more can be
        recorded, so nothing more is done); the error then names the way on."""
        try:
            return self._execute(ctx, start=start)
        except DriverError as exc:
            if exc.driver == "state-store" and "deployops resume" not in (exc.hint or ""):
                exc.hint = (
                    f"{exc.hint + '; ' if exc.hint else ''}{ctx.op.id} stopped with traffic "
                    "as it was; once the state database can be written again, "
                    f"`deployops resume {ctx.op.id}` finishes it"
                )
            raise

    def _execute(self, ctx: StepContext, *, start: int) -> OperationRecord:
        store, clock = self.env.store, self.env.clock
        op_id = ctx.op.id
        seq = start
        while seq < len(ctx.plan.steps):
            steps = ctx.plan.steps
            step = steps[seq]
            resolved = resolve_step(step, ctx.results)
            self._crash_point(ctx, seq, "before-intent")
            store.update_operation(op_id, phase=step.phase, updated_at=clock.now())
            store.record_step_intent(
                op_id, seq, step.kind, phase=step.phase, params=resolved.to_json(), now=clock.now()
            )
            self._crash_point(ctx, seq, "before-act")
            ctx.event(
                "step.started",
                f"[{seq + 1}/{len(steps)}] {resolved.describe()}",
                data={"seq": seq, "step": step.kind, "phase": step.phase},
            )
            began = clock.monotonic()
            try:
                result = self.handlers.handler_for(resolved)(resolved, ctx)
            except DeployopsError as exc:
                store.record_step_outcome(
                    op_id, seq, status="failed", error=exc.message, now=clock.now()
                )
                ctx.event(
                    "step.failed",
                    f"{step.kind} failed: {exc.message}",
                    level="error",
                    data={"seq": seq, "step": step.kind},
                )
                ctx.refresh()
                if REVERT_DETAIL in ctx.op.detail:
                    ctx.state["revert_failed"] = True
                elif ctx.kind.revert is not None:
                    seq = self._begin_revert(ctx, seq, exc)
                    continue
                return ctx.kind.on_failure(ctx, step, exc)
            took = clock.monotonic() - began
            self._crash_point(ctx, seq, "before-outcome")
            ctx.results.update(result)
            store.record_step_outcome(
                op_id, seq, status="succeeded", result=result, now=clock.now()
            )
            ctx.event(
                "step.succeeded",
                f"{step.kind} done in {took:.2f}s",
                data={"seq": seq, "step": step.kind, "seconds": round(took, 3), "result": result},
            )
            seq += 1
        revert = ctx.refresh().detail.get(REVERT_DETAIL)
        if revert:
            # everything is put back: the operation failed, and says so as its kind does
            ctx.state["reverted"] = True
            failed = ctx.plan.steps[int(revert["failed_seq"])]
            error = DeploymentError(str(revert["error"]), hint=revert.get("hint") or None)
            return ctx.kind.on_failure(ctx, failed, error)
        now = clock.now()
        store.update_operation(
            op_id, status="succeeded", phase="done", updated_at=now, finished_at=now
        )
        done = ctx.refresh()
        if ctx.kind.on_success is not None:
            ctx.kind.on_success(ctx)
        else:
            ctx.event(f"{ctx.kind.events}.succeeded", f"{ctx.kind.name} of {done.target} succeeded")
        return done

    def _begin_revert(self, ctx: StepContext, failed: int, exc: DeployopsError) -> int:
        """Store the kind's revert steps after the plan's own and return the index of the
        first: the loop runs them like any step, and ``resume`` continues them."""
        assert ctx.kind.revert is not None
        store, clock = self.env.store, self.env.clock
        steps = tuple(ctx.kind.revert(ctx, failed, exc))
        first = len(ctx.plan.steps)
        ctx.plan = replace(ctx.plan, steps=ctx.plan.steps + steps)
        store.update_operation(
            ctx.op.id,
            plan=ctx.plan.to_record(),
            phase="revert",
            updated_at=clock.now(),
            detail={
                REVERT_DETAIL: {
                    "failed_seq": failed,
                    "failed_step": ctx.plan.steps[failed].kind,
                    "error": exc.message,
                    "hint": exc.hint or "",
                    "first_seq": first,
                }
            },
        )
        ctx.refresh()
        ctx.event(
            f"{ctx.kind.events}.reverting",
            f"{ctx.plan.steps[failed].kind} failed: {exc.message}; putting back with "
            f"{len(steps)} step(s)",
            level="warning",
            data={"failed_seq": failed, "steps": [s.kind for s in steps]},
        )
        return first

    def _crash_point(self, ctx: StepContext, seq: int, where: str) -> None:
        if self.env.crash_point is not None:
            self.env.crash_point(ctx.kind.name, seq, where)


def resolve_step(step: Step, results: Mapping[str, Any]) -> Step:
    """Fill fields whose value is ``@name`` (e.g. ``FROM_CONTEXT``) from earlier results."""
    changes: dict[str, Any] = {}
    for f in fields(step):
        value = getattr(step, f.name)
        if isinstance(value, str) and value.startswith("@") and len(value) > 1:
            found = results.get(value[1:])
            if not found:
                raise DeploymentError(
                    f"{step.kind} needs the {value[1:].replace('_', ' ')} of an earlier step"
                )
            changes[f.name] = found
    return replace(step, **changes) if changes else step
