"""What a failed deployment step does (DEP-7, RB-2): stop, restore the last good state,
roll back, verify, report.

Before the switch nothing moved: the failed colour is torn down (if the plan says so) and
production stays where it was. After the switch, traffic goes back first (a listener flip to
the colour that kept running), then people are told, then the rollback is verified, recorded
as an operation of its own (kind ``rollback``, ``reverts``) and written up as an incident
report. A rolling update goes back to the previous task definition. A deployment the platform
carries out itself (``ecs-native``) is rolled back by the platform (ECS
``StopServiceDeployment(ROLLBACK)``), and deployops waits until it has. Everything it reads
comes from the operation's record and its frozen plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deployops.domain.names import prod_listener
from deployops.domain.native import NATIVE_STRATEGY, WaitNativeDeployment
from deployops.domain.plan import (
    SHIFT_STRATEGIES,
    Bake,
    Observe,
    Plan,
    RollingUpdate,
    Step,
    SwitchListener,
)
from deployops.engine.events import Notice
from deployops.engine.incident import measure_impact, verify_rollback, write_incident_report
from deployops.engine.observe.health import Verdict
from deployops.engine.observe.watch import ROLLBACK_VERDICT, operation_fields
from deployops.engine.operation import StepContext
from deployops.engine.steps.native import rollback_native
from deployops.engine.steps.rolling import PLATFORM_ROLLBACK, wait_platform_rollback
from deployops.errors import DeploymentError, DeployopsError, RolledBackError
from deployops.ids import new_id
from deployops.store import DeploymentRecord, OperationRecord

__all__ = ["guard_traffic", "recover_deployment"]


def guard_traffic(ctx: StepContext) -> None:
    """Before a resumed deployment continues: never leave production on an unhealthy
    target group."""
    if ctx.plan.strategy == NATIVE_STRATEGY:
        return  # the platform moves traffic; the resumed step reads its deployment again
    ports = ctx.ports
    prod = prod_listener(ctx.op.target)
    listener = ports.traffic.describe_listener(prod)
    tg = listener.target_group
    svc = ports.compute.describe_service(tg)
    # A canary's share counts too: every group with a weight must be serving.
    shares = [g for g, w in listener.forwards if w > 0 and g != tg]
    if svc is not None and svc.desired > 0 and svc.healthy >= 1:
        unserved = [g for g in shares if not _serving(ctx, g)]
        if not unserved:
            return
        tg = unserved[0]
    prev = ctx.plan.previous_target_group
    if prev and prev != tg:
        prev_svc = ports.compute.describe_service(prev)
        if prev_svc is not None and prev_svc.healthy >= 1:
            ports.traffic.switch_listener(prod, prev)
            ctx.event(
                "traffic.restored",
                f"production was on unhealthy {tg}; switched back to {prev}",
                level="warning",
            )


def _serving(ctx: StepContext, target_group: str) -> bool:
    svc = ctx.ports.compute.describe_service(target_group)
    return svc is not None and svc.desired > 0 and svc.healthy >= 1


def _restore(
    ctx: StepContext, step: Step, rec: DeploymentRecord
) -> tuple[bool, dict[str, Any] | None, list[str]]:
    """Put traffic back where it is safe. Returns (rolled back, the flip, notes)."""
    ports, plan = ctx.ports, ctx.plan
    prod = prod_listener(rec.service)
    notes: list[str] = []
    current = ports.traffic.describe_listener(prod).target_group
    prev = rec.previous_target_group
    if plan.strategy == NATIVE_STRATEGY:
        return _restore_native(ctx, rec, current, judged=isinstance(step, Observe))
    if rec.kind == "rollback":
        notes.append(f"rollback stopped; production is on {current}")
        return False, None, notes
    if plan.strategy in SHIFT_STRATEGIES:
        return _restore_shift(ctx, rec)
    if plan.strategy == "blue-green":
        flip: dict[str, Any] | None = None
        if current == plan.target_group and prev and prev != current:
            # The switch happened: flip back to the colour that kept running (RB-2).
            began = ctx.clock.monotonic()
            ports.traffic.switch_listener(prod, prev)
            ms = (ctx.clock.monotonic() - began) * 1000
            flip = {
                "listener": prod,
                "from": current,
                "to": prev,
                "ms": round(ms, 3),
                "at": ctx.clock.now().isoformat(),
            }
            notes.append(f"switched {prod} back to {prev} in {ms:.0f} ms")
        elif current != plan.target_group:
            notes.append(f"traffic stayed on {current}")
        return flip is not None, flip, notes
    platform_rollback = str(ctx.state.get(PLATFORM_ROLLBACK) or "")
    if isinstance(step, RollingUpdate) and platform_rollback:
        # The platform rolls back by itself (an armed alarm, the circuit breaker): wait for
        # it, never start a second deployment over it.
        ok, note = wait_platform_rollback(ctx, platform_rollback)
        notes.append(note)
        return ok, None, notes
    if isinstance(step, RollingUpdate | Observe) and rec.previous_task_definition:
        ports.compute.update_service(
            plan.target_group, task_definition=rec.previous_task_definition
        )
        notes.append(f"rolling back {plan.target_group} to {rec.previous_task_definition}")
        return True, None, notes
    return False, None, notes


def _restore_shift(
    ctx: StepContext, rec: DeploymentRecord
) -> tuple[bool, dict[str, Any] | None, list[str]]:
    """A canary or linear deployment: whatever share of production the new colour has
    (a step's weight, or all of it after the switch) goes back to the previous colour at once,
    before anything else (one ``switch_listener``: the weights of the new colour to 0)."""
    plan, ports = ctx.plan, ctx.ports
    prod = prod_listener(rec.service)
    listener = ports.traffic.describe_listener(prod)
    share = dict(listener.forwards).get(plan.target_group, 0)
    prev = rec.previous_target_group
    if share <= 0 or not prev or prev == plan.target_group:
        return False, None, [f"traffic stayed on {listener.target_group}"]
    began = ctx.clock.monotonic()
    ports.traffic.switch_listener(prod, prev)
    ms = (ctx.clock.monotonic() - began) * 1000
    flip = {
        "listener": prod,
        "from": plan.target_group,
        "to": prev,
        "ms": round(ms, 3),
        "at": ctx.clock.now().isoformat(),
        "percent": share,
    }
    return (
        True,
        flip,
        [f"moved the {share}% of {prod} on {plan.target_group} back to {prev} in {ms:.0f} ms"],
    )


def _restore_native(
    ctx: StepContext, rec: DeploymentRecord, current: str, *, judged: bool = False
) -> tuple[bool, dict[str, Any] | None, list[str]]:
    """The platform rolls its deployment back (RB-2); a rollback when production had
    reached the new revision (all of it, or a canary's or linear step's share while it was
    ``judged``), otherwise a failed deployment whose new revision is gone."""
    plan = ctx.plan
    prod = prod_listener(rec.service)
    interval = next((s.interval_s for s in plan.steps if isinstance(s, WaitNativeDeployment)), 5.0)
    began = ctx.clock.monotonic()
    ok, note = rollback_native(ctx, interval_s=interval)
    notes = [note]
    after = ctx.ports.traffic.describe_listener(prod).target_group
    ms = (ctx.clock.monotonic() - began) * 1000
    if rec.kind == "rollback":
        notes.append(f"rollback stopped; production is on {after}")
        return False, None, notes
    if ok and (current == plan.target_group or judged) and after != plan.target_group:
        notes.append(f"the platform moved {prod} back to {after} in {ms:.0f} ms")
        flip = {
            "listener": prod,
            "from": plan.target_group,
            "to": after,
            "ms": round(ms, 3),
            "at": ctx.clock.now().isoformat(),
            "by": "platform",
        }
        return True, flip, notes
    notes.append(f"traffic stayed on {after}")
    return False, None, notes


def _teardown(ctx: StepContext, notes: list[str]) -> None:
    """Scale the failed colour to 0 once no traffic reaches it (``teardown_on_failure``)."""
    plan, ports = ctx.plan, ctx.ports
    if plan.strategy not in ("blue-green", *SHIFT_STRATEGIES) or not ctx.settings.get(
        "teardown_on_failure", True
    ):
        return
    listener = ports.traffic.describe_listener(prod_listener(ctx.op.target))
    if dict(listener.forwards).get(plan.target_group, 0) > 0:
        return
    svc = ports.compute.describe_service(plan.target_group)
    if svc is not None and svc.desired > 0:
        ports.compute.update_service(plan.target_group, desired_count=0)
        notes.append(f"scaled failed {plan.target_group} to 0")


def recover_deployment(ctx: StepContext, step: Step, exc: DeployopsError) -> OperationRecord:
    """The failure handler of deploys and rollbacks: stop at the first failure (DEP-7)."""
    rec = DeploymentRecord.from_operation(ctx.op)
    rolled_back = False
    flip: dict[str, Any] | None = None
    impact: dict[str, Any] | None = None
    notes: list[str] = []
    try:
        rolled_back, flip, notes = _restore(ctx, step, rec)
        if flip is not None:
            impact = _impact(ctx, rec, flip)
        _teardown(ctx, notes)
    except DeployopsError as cleanup_exc:
        notes.append(f"cleanup failed: {cleanup_exc.message}")
    for notice in ctx.pending:
        ctx.send(notice)
    ctx.pending.clear()
    status = "rolled_back" if rolled_back else "failed"
    now = ctx.clock.now()
    error = exc.message + (f" ({'; '.join(notes)})" if notes else "")
    ctx.store.update_operation(rec.id, status=status, error=error, updated_at=now, finished_at=now)
    ctx.event(f"deploy.{status}", error, level="error")
    report = ""
    if rolled_back:
        report = _after_rollback(ctx, step, flip, error, impact)
    ctx.send(
        Notice(
            severity="critical" if rolled_back else "warning",
            kind=f"deployment.{status}",
            title=f"{rec.service} {rec.version} {status.replace('_', ' ')} in {rec.environment}",
            text=error + (f" Incident report: {report}" if report else ""),
            dedup_key=rec.id,
            fields={**operation_fields(ctx), "failed_step": step.kind},
        )
    )
    if rolled_back:
        raise RolledBackError(
            f"{rec.id}: {rec.service} {rec.version} was rolled back: {error}",
            hint=f"`deployops deployments show {rec.id}` has the steps and evidence"
            + (f"; incident report: {report}" if report else ""),
        )
    raise DeploymentError(
        f"{rec.id}: {rec.kind} of {rec.service} {rec.version} failed at {step.kind}: {error}",
        hint=exc.hint or f"`deployops deployments show {rec.id}` has the steps",
    )


def _current(ctx: StepContext) -> DeploymentRecord:
    return DeploymentRecord.from_operation(ctx.refresh())


def _impact(
    ctx: StepContext, rec: DeploymentRecord, flip: Mapping[str, Any]
) -> dict[str, Any] | None:
    _ = rec
    try:
        return measure_impact(ctx, _current(ctx), flip)
    except DeployopsError:
        return None


def _after_rollback(
    ctx: StepContext,
    step: Step,
    flip: Mapping[str, Any] | None,
    error: str,
    impact: Mapping[str, Any] | None = None,
) -> str:
    """Verify the automatic rollback, record it as an operation of its own linked to the one
    it reverts, and write the incident report (RB-2 verify). Returns the report's path.
    Never raises: the rollback itself already happened."""
    rec = _current(ctx)
    trigger = ctx.state.get(ROLLBACK_VERDICT)
    try:
        interval = next(
            (s.interval_s for s in ctx.plan.steps if isinstance(s, Observe | Bake)), 0.0
        )
        verification = verify_rollback(
            ctx,
            rec,
            target_group=str(flip["to"]) if flip else rec.target_group,
            wait_s=interval,
        )
        rb_id = _record_rollback(ctx, rec, flip, verification, step)
        path = write_incident_report(
            ctx,
            rec,
            rollback_id=rb_id,
            flip=dict(flip) if flip else None,
            verification=verification,
            trigger=trigger if isinstance(trigger, Verdict) else None,
            error=error,
            impact=impact,
        )
    except DeployopsError as exc:
        ctx.event(
            "incident.failed",
            f"the rollback happened, but its report failed: {exc.message}",
            level="error",
        )
        return ""
    return str(path)


def _record_rollback(
    ctx: StepContext,
    rec: DeploymentRecord,
    flip: Mapping[str, Any] | None,
    verification: Mapping[str, Any],
    step: Step,
) -> str:
    """The automatic rollback as an operation record (kind ``rollback``, ``reverts``)."""
    store = ctx.store
    now = ctx.clock.now()
    rb_id = new_id("dep", now)
    by_platform = bool(flip and flip.get("by") == "platform") or bool(
        ctx.state.get(PLATFORM_ROLLBACK)
    )
    plan = Plan(
        strategy="platform-rollback" if by_platform else ("flip" if flip else "redeploy"),
        steps=(
            SwitchListener(
                listener=prod_listener(rec.service),
                target_group=rec.previous_target_group,
                previous_target_group=rec.target_group,
            ),
        )
        if flip and not by_platform
        else (),
        target_group=rec.previous_target_group or rec.target_group,
        previous_target_group=rec.target_group,
        settings=ctx.plan.settings,
    )
    ok = bool(verification.get("ok"))
    store.create_operation(
        OperationRecord(
            id=rb_id,
            kind="rollback",
            environment=rec.environment,
            target=rec.service,
            status="succeeded" if ok else "failed",
            phase="done",
            owner="deployops (automatic)",
            reverts=rec.id,
            plan=plan.to_record(),
            detail={
                "version": rec.previous_version,
                "strategy": plan.strategy,
                "task_definition": rec.previous_task_definition,
                "target_group": plan.target_group,
                "previous_version": rec.version,
                "previous_task_definition": rec.task_definition,
                "previous_target_group": rec.target_group,
            },
            error="" if ok else str(verification.get("summary", "")),
            created_at=now,
            updated_at=now,
            finished_at=now,
        )
    )
    seq = 0
    if flip is None and ctx.state.get(PLATFORM_ROLLBACK):
        # A rolling deployment the platform rolled back (no listener moved).
        store.record_step_intent(
            rb_id,
            0,
            "PlatformRollback",
            phase="deploy",
            params={"deployment": str(ctx.state[PLATFORM_ROLLBACK]), "by": "platform"},
            now=now,
        )
        store.record_step_outcome(rb_id, 0, status="succeeded", result={}, now=now)
        seq = 1
    if flip:
        store.record_step_intent(
            rb_id,
            0,
            "PlatformRollback" if by_platform else "SwitchListener",
            phase="switch",
            params=dict(flip),
            now=now,
        )
        store.record_step_outcome(
            rb_id, 0, status="succeeded", result={"ms": flip.get("ms")}, now=now
        )
        seq = 1
    store.record_step_intent(
        rb_id, seq, "VerifyRollback", phase="verify", params={"after": step.kind}, now=now
    )
    store.record_step_outcome(
        rb_id,
        seq,
        status="succeeded" if ok else "failed",
        result=dict(verification),
        error="" if ok else str(verification.get("summary", "")),
        now=ctx.clock.now(),
    )
    ctx.event(
        "rollback.recorded",
        f"automatic rollback {rb_id} of {rec.id}: {verification.get('summary', '')}",
        data={"rollback_id": rb_id},
    )
    return rb_id
