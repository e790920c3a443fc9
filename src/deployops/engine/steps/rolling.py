"""A rolling update the platform carries out and rolls back by itself (ECS rolling deployments
in ``aws.mode: services``), with the rollback rules armed as the platform's alarms (RB-1).

:func:`platform_rolling_update` arms the rules of the plan's frozen rollback policy that roll
back (:func:`~deployops.domain.rollout.armed_rules`), starts the update watched by them, and
waits until the platform reports the deployment done. When the platform rolls it back (an
alarm went into ``ALARM``, or the circuit breaker tripped) the step stores the decision with
its evidence (which alarms, which rules) and fails; :mod:`deployops.engine.recovery` then waits
for the platform's rollback (:func:`wait_platform_rollback`) and reports an automatic rollback.
A resumed step watches the deployment it started (kept in the operation's detail), never
starting a second one.
"""

from __future__ import annotations

from typing import Any

from deployops.domain.plan import RollingUpdate
from deployops.domain.policy import Action
from deployops.domain.rollout import ArmedRule, Rollout, armed_rules, unarmed_rules
from deployops.engine.observe.health import Verdict
from deployops.engine.observe.watch import ROLLBACK_VERDICT, decide
from deployops.engine.operation import StepContext
from deployops.engine.planning.deploy import frozen_rollback
from deployops.engine.poll import wait_until
from deployops.errors import DeploymentError, DeployopsError
from deployops.ports import PlatformRollouts

__all__ = [
    "PLATFORM_POLL_S",
    "PLATFORM_ROLLBACK",
    "platform_rolling_update",
    "platform_rollouts",
    "wait_platform_rollback",
]

# The key, in ``StepContext.state``, of the deployment the platform is rolling back.
PLATFORM_ROLLBACK = "platform_rollback"
# How often the platform's deployment is read.
PLATFORM_POLL_S = 5.0
# On top of the health timeout: the platform's bake time after steady state, which it
# computes from the alarms' windows, and its own pace.
SLACK_S = 600.0


def platform_rollouts(ctx: StepContext) -> PlatformRollouts | None:
    port = ctx.ports.extra.get(PlatformRollouts)
    return port if isinstance(port, PlatformRollouts) else None


def _armed(ctx: StepContext) -> tuple[ArmedRule, ...]:
    settings = frozen_rollback(ctx.settings)
    return armed_rules(settings.policy()) if settings.enabled else ()


def platform_rolling_update(
    step: RollingUpdate, ctx: StepContext, rollouts: PlatformRollouts
) -> dict[str, Any]:
    armed = _armed(ctx)
    by_rule = dict(rollouts.arm(step.service, armed)) if armed else {}
    by_alarm = {alarm: a for a in armed if (alarm := by_rule.get(a.rule.name))}
    names = tuple(by_alarm)
    if names:
        left = unarmed_rules(frozen_rollback(ctx.settings).policy())
        ctx.event(
            "rollout.alarms_armed",
            f"rollback rules armed as platform alarms for {step.service}: "
            + ", ".join(a.rule.name for a in by_alarm.values())
            + (f" (judged by deployops only: {', '.join(left)})" if left else ""),
            data={"alarms": by_rule},
        )
    known = str(ctx.op.detail.get("rollout") or "")
    deployment = known or rollouts.start(
        step.service,
        task_definition=step.task_definition,
        desired_count=step.desired_count,
        alarms=names,
    )
    if not known:
        ctx.update_detail(rollout=deployment)
        ctx.event(
            "rollout.started",
            f"rolling deployment of {step.service} started on the platform",
            data={"deployment": deployment, "alarms": list(names)},
        )
    last: list[Rollout] = []

    def check() -> tuple[bool, str]:
        r = rollouts.describe(deployment)
        last[:] = [r]
        if r.succeeded:
            return True, r.status
        if not r.running:
            raise _rolled_back(ctx, step, r, by_alarm, deployment)
        return False, f"{r.status}" + (f": {r.reason}" if r.reason else "")

    window = max((a.rule.window_s for a in armed), default=0.0)
    timeout = step.timeout_s + window + SLACK_S
    try:
        wait_until(
            ctx.clock,
            check,
            timeout_s=timeout,
            interval_s=PLATFORM_POLL_S,
            what=f"rolling deployment of {step.service}",
            on_progress=lambda note, left: ctx.progress(f"rolling update: {note}", left),
        )
    except DeploymentError:
        raise
    except DeployopsError as exc:
        raise DeploymentError(
            f"the rolling deployment of {step.service} did not finish within {timeout:g}s "
            f"({exc.message})",
            hint="the ECS console's Deployments tab shows where the deployment stands",
        ) from exc
    return {
        "deployment": deployment,
        "status": last[0].status if last else "",
        "alarms": list(names),
    }


def _rolled_back(
    ctx: StepContext,
    step: RollingUpdate,
    r: Rollout,
    by_alarm: dict[str, ArmedRule],
    deployment: str,
) -> DeploymentError:
    """The platform ended or is rolling back the deployment: the decision, with evidence."""
    triggered = [by_alarm[a].rule.name if a in by_alarm else a for a in r.triggered_alarms]
    if triggered:
        why = f"alarm{'s' if len(triggered) > 1 else ''} {', '.join(r.triggered_alarms)} "
        why += f"went into ALARM (rollback rule {', '.join(triggered)})"
        rule = ",".join(triggered)
    elif r.circuit_breaker:
        why = "the deployment circuit breaker tripped (tasks failed to start or turn healthy)"
        rule = "circuit-breaker"
    else:
        why = f"the platform ended the deployment {r.status}"
        rule = "platform"
    detail = r.rollback_reason or r.reason
    if detail:
        why += f": {detail}"
    if r.rolling_back or r.rolled_back:
        evidence: dict[str, Any] = {
            "by": "platform",
            "triggered": ", ".join(r.triggered_alarms)
            or ("circuit breaker" if r.circuit_breaker else "-"),
            "platform_reason": detail or r.status,
            "rollout": r.to_dict(),
            "alarms": {
                name: {
                    "rule": a.rule.name,
                    "condition": a.rule.describe(),
                    "triggered": name in r.triggered_alarms,
                }
                for name, a in by_alarm.items()
            },
        }
        verdict = Verdict(action=Action.ROLLBACK, reason=why, rule=rule, evidence=evidence)
        ctx.state[ROLLBACK_VERDICT] = verdict
        ctx.state[PLATFORM_ROLLBACK] = deployment
        notice = decide(ctx, verdict, send=False)
        if notice is not None:
            ctx.pending.append(notice)
        return DeploymentError(f"the platform is rolling back {step.service}: {why}")
    return DeploymentError(
        f"the rolling deployment of {step.service} ended {r.status}: {why}",
        hint="the ECS console's Deployments tab of the service shows the events",
    )


def wait_platform_rollback(ctx: StepContext, deployment: str) -> tuple[bool, str]:
    """Wait until the platform finished rolling ``deployment`` back. Returns (rolled back,
    note); never raises."""
    rollouts = platform_rollouts(ctx)
    if rollouts is None:
        return False, "the platform's rollouts cannot be read here"
    last: list[Rollout] = []

    def check() -> tuple[bool, str]:
        r = rollouts.describe(deployment)
        last[:] = [r]
        return r.ended, r.status

    try:
        wait_until(
            ctx.clock,
            check,
            timeout_s=SLACK_S + 300.0,
            interval_s=PLATFORM_POLL_S,
            what="the platform's rollback",
            on_progress=lambda note, left: ctx.progress(f"rolling back: {note}", left),
        )
    except DeployopsError as exc:
        return False, f"the platform's rollback was not confirmed: {exc.message}"
    r = last[0]
    if r.rolled_back:
        return True, "the platform rolled the service back to its previous revision"
    return False, f"the platform ended the rollback {r.status} {r.reason}".strip()
