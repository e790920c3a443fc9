"""The ``Observe`` step: watch the new version for the stability window (DEP-3) under the
rollback rules (RB-1), with the observer built from the settings frozen into the plan.

The first evaluation comes one sample interval after the switch (RB-2: within 30 s of the
first anomalous sample). A verdict that still needs time (an escalation, a scale-out being
judged) extends the window, at most by :data:`MAX_OBSERVE_HOLD_S`. A rollback verdict fails the
step; the operation's failure handler (:mod:`deployops.engine.recovery`) flips traffic back.
"""

from __future__ import annotations

from typing import Any

from deployops.domain.plan import Observe
from deployops.domain.policy import Action
from deployops.engine.events import Notice
from deployops.engine.observe.health import (
    HealthObserver,
    Observer,
    ObserverFactory,
    ScaleAware,
    Verdict,
)
from deployops.engine.operation import StepContext
from deployops.errors import DeploymentError
from deployops.store import DecisionRecord

__all__ = ["MAX_OBSERVE_HOLD_S", "ObserveHandler", "decide", "operation_fields"]

# The longest an observation may run past its stability window while an escalation or a
# scale-out waits to be judged (a flapping metric must not hold a deploy forever).
MAX_OBSERVE_HOLD_S = 3600.0

# The key of the verdict that failed the step, in ``StepContext.state``.
ROLLBACK_VERDICT = "rollback_verdict"


def operation_fields(ctx: StepContext) -> dict[str, str]:
    """The fields every notice about a deployment carries."""
    d = ctx.op.detail
    return {
        "deployment": ctx.op.id,
        "environment": ctx.op.environment,
        "service": ctx.op.target,
        "version": str(d.get("version", "")),
        "previous": str(d.get("previous_version", "")) or "-",
    }


def decide(ctx: StepContext, verdict: Verdict, *, send: bool = True) -> Notice | None:
    """Store a decision with its evidence (RB-2) and tell stakeholders; with ``send=False``
    the notice is returned to be sent later (after a rollback's flip)."""
    ctx.store.add_decision(
        DecisionRecord(
            ts=ctx.clock.now(),
            deployment_id=ctx.op.id,
            rule=verdict.rule or "observe",
            verdict=verdict.reason,
            action=verdict.action.value,
            evidence=verdict.evidence,
        )
    )
    ctx.event(
        "decision",
        f"{verdict.rule}: {verdict.reason} -> {verdict.action}",
        level="warning",
        data={
            "action": verdict.action.value,
            "rule": verdict.rule,
            "caused_by_release": verdict.evidence.get("caused_by_release"),
        },
    )
    if verdict.action is Action.NONE:
        return None
    version = str(ctx.op.detail.get("version", ""))
    blamed = verdict.evidence.get("caused_by_release")
    title = f"{ctx.op.target} {version}: {verdict.rule} -> {verdict.action}"
    if verdict.action is Action.NOTIFY and blamed is False and verdict.evidence.get("baseline"):
        title = f"{ctx.op.target} {version}: {verdict.rule} breached, not caused by this release"
    notice = Notice(
        severity="critical" if verdict.action is Action.ROLLBACK else "warning",
        kind="decision",
        title=title,
        text=verdict.reason,
        dedup_key=f"{ctx.op.id}:{verdict.rule}",
        fields={**operation_fields(ctx), "rule": verdict.rule, "action": verdict.action.value},
    )
    if send:
        ctx.send(notice)
        return None
    return notice


class ObserveHandler:
    """Handles ``Observe`` steps; ``factory`` builds each deployment's observer from the
    plan's frozen settings (without one, the checklist's :class:`HealthObserver`)."""

    def __init__(self, factory: ObserverFactory | Observer | None = None) -> None:
        self._factory = factory

    def observer_for(self, ctx: StepContext) -> Observer:
        if self._factory is None:
            return HealthObserver(compute=ctx.ports.compute, metrics=ctx.ports.metrics)
        if isinstance(self._factory, Observer):
            return self._factory
        return self._factory(ctx.op.target, ctx.plan.settings)

    def __call__(self, step: Observe, ctx: StepContext) -> dict[str, Any]:
        observer = self.observer_for(ctx)
        clock = ctx.clock
        since = clock.now()
        began = clock.monotonic()
        base_end = began + step.window_s
        limit = base_end + MAX_OBSERVE_HOLD_S
        end = base_end
        checks = 0
        told: dict[str, tuple[Action, str]] = {}  # rule -> (action, verdict) last recorded
        decisions = 0
        while True:
            left = end - clock.monotonic()
            if left <= 0:
                break
            clock.sleep(min(step.interval_s, left))
            verdict = observer.evaluate(step, since=since, now=clock.now())
            checks += 1
            mono = clock.monotonic()
            new_end = max(base_end, min(limit, mono + verdict.hold_s))
            if verdict.hold_s > 0 and new_end > base_end and end <= base_end:
                ctx.event(
                    "observe.extended",
                    f"keeping {step.target_group} under observation past the "
                    f"{step.window_s:g}s window: {verdict.reason}",
                    level="warning",
                    data={"hold_s": round(verdict.hold_s, 1)},
                )
            # Never shorten a hold already granted: a rule whose newest period is still being
            # collected must not lose the time it was given one sample ago.
            end = max(end, new_end)
            ctx.progress(
                f"observing {step.target_group}: {verdict.reason}",
                max(0.0, end - clock.monotonic()),
                stage="observe",
            )
            if verdict.action is Action.ROLLBACK:
                ctx.state[ROLLBACK_VERDICT] = verdict
                notice = decide(ctx, verdict, send=False)
                if notice is not None:
                    ctx.pending.append(notice)
                raise DeploymentError(
                    f"{step.target_group} broke a rule while observed: {verdict.reason}"
                )
            if verdict.action is Action.NONE:
                continue
            key = (verdict.action, str(verdict.evidence.get("verdict", "")))
            if verdict.action is Action.SCALE_OUT:
                decide(ctx, verdict)
                decisions += 1
                _scale_out(ctx, step, verdict, observer)
            elif told.get(verdict.rule) != key:
                # A notice is recorded once per change of state, not once per sample.
                decide(ctx, verdict)
                decisions += 1
            told[verdict.rule] = key
        return {
            "observed_s": round(clock.monotonic() - began, 3),
            "checks": checks,
            "extended_s": round(max(0.0, end - base_end), 3),
            "decisions": decisions,
        }


def _scale_out(ctx: StepContext, step: Observe, verdict: Verdict, observer: Observer) -> None:
    """Raise the new service's desired count within the policy's limits (RB-1 memory and
    CPU rows); no room left is reported to the observer, which then decides (rollback for
    memory, a notice for CPU)."""
    max_replicas, add = observer.scale_limits() if isinstance(observer, ScaleAware) else (10, 2)
    compute = ctx.ports.compute
    svc = compute.describe_service(step.service)
    desired = svc.desired if svc is not None else 0
    now = ctx.clock.now()
    if desired >= max_replicas:
        detail = f"{step.service} already runs {desired} of at most {max_replicas} replicas"
        ctx.event("scale_out.no_room", detail, level="warning")
        if isinstance(observer, ScaleAware):
            observer.scaled_out(verdict.rule, at=now, desired=desired, no_room=True, detail=detail)
        return
    target = min(max_replicas, desired + add)
    compute.update_service(step.service, desired_count=target)
    detail = f"scaled {step.service} out from {desired} to {target} replicas ({verdict.rule})"
    ctx.event(
        "scale_out",
        detail,
        level="warning",
        data={"from": desired, "to": target, "rule": verdict.rule},
    )
    if isinstance(observer, ScaleAware):
        observer.scaled_out(verdict.rule, at=now, desired=target, no_room=False, detail=detail)
