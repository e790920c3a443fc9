"""Phase 2 (DEP-2) and the rolling update (IAC-4): start, wait for health, scale."""

from __future__ import annotations

from typing import Any

from deployops.domain.model import TaskState
from deployops.domain.plan import RollingUpdate, ScaleService, StartService, WaitHealthy
from deployops.engine.operation import StepContext
from deployops.engine.poll import wait_until
from deployops.errors import DeploymentError, DeployopsError

__all__ = [
    "CRASH_LOOP_RESTARTS",
    "rolling_update",
    "scale_service",
    "start_service",
    "wait_healthy",
]

# WaitHealthy stops early once every task of the new version restarted this often.
CRASH_LOOP_RESTARTS = 3


def start_service(step: StartService, ctx: StepContext) -> dict[str, Any]:
    st = ctx.ports.compute.create_service(
        step.service,
        task_definition=step.task_definition,
        desired_count=step.desired_count,
        target_group=step.target_group,
    )
    return {"service": st.name, "desired": st.desired}


def scale_service(step: ScaleService, ctx: StepContext) -> dict[str, Any]:
    st = ctx.ports.compute.update_service(step.service, desired_count=step.desired_count)
    return {"service": st.name, "desired": st.desired}


def wait_healthy(step: WaitHealthy, ctx: StepContext) -> dict[str, Any]:
    """Every container of the new version healthy and in its target group, within the
    health timeout; a version whose every task keeps crashing fails early (a circuit
    breaker like ECS's)."""
    compute, traffic = ctx.ports.compute, ctx.ports.traffic
    service, target_group, desired = step.service, step.target_group, step.desired_count
    last: dict[str, Any] = {}
    notes = [""]
    crash_loop = [False]

    def check() -> tuple[bool, str]:
        st = compute.describe_service(service)
        tg = traffic.describe_target_group(target_group)
        if st is None:
            return False, f"{service} does not exist"
        on_new = [t for t in st.tasks if t.task_definition in ("", step.task_definition)]
        healthy = sum(1 for t in on_new if t.healthy)
        in_lb = tg.healthy_count if tg else 0
        last.update(healthy=healthy, in_target_group=in_lb, running=st.running, desired=desired)
        note = (
            f"{healthy}/{desired} containers healthy, {in_lb}/{desired} healthy in {target_group}"
        )
        errors = [t.last_error for t in on_new if t.last_error]
        if errors:
            note += f"; last error: {errors[-1]}"
        notes[0] = note
        # Every task of the new version has failed again and again without ever turning
        # healthy; waiting out the timeout changes nothing.
        running_new = [t for t in on_new if t.state is not TaskState.STOPPED]
        if (
            running_new
            and healthy == 0
            and min(t.restarts for t in running_new) >= CRASH_LOOP_RESTARTS
        ):
            crash_loop[0] = True
            return True, note
        return healthy >= desired and in_lb >= desired, note

    try:
        note = wait_until(
            ctx.clock,
            check,
            timeout_s=step.timeout_s,
            interval_s=step.interval_s,
            what=f"health of {service}",
            on_progress=lambda n, left: ctx.progress(n, left, **last),
        )
    except DeployopsError as exc:
        raise DeploymentError(
            f"{service} did not turn healthy within {step.timeout_s:g}s ({notes[0]})",
            hint="read the replica logs (`deployops local status` shows where), fix the "
            "version, or raise blue_green.health_timeout",
        ) from exc
    if crash_loop[0]:
        raise DeploymentError(
            f"{service} is crash-looping: every task failed {CRASH_LOOP_RESTARTS} times or "
            f"more without turning healthy ({notes[0]})",
            hint="read the replica logs (`deployops local status` shows where) and fix "
            "the version; traffic was not switched",
        )
    return {"healthy": last.get("healthy", desired), "note": note}


def rolling_update(step: RollingUpdate, ctx: StepContext) -> dict[str, Any]:
    """IAC-4. A platform that rolls back by itself (ECS) runs the update with the rollback
    rules armed as its alarms (:mod:`deployops.engine.steps.rolling`)."""
    from deployops.engine.steps.rolling import platform_rolling_update, platform_rollouts

    rollouts = platform_rollouts(ctx)
    if rollouts is not None:
        return platform_rolling_update(step, ctx, rollouts)
    compute = ctx.ports.compute
    desired = step.desired_count
    min_healthy = desired * step.minimum_healthy_percent // 100
    compute.update_service(
        step.service, task_definition=step.task_definition, desired_count=desired
    )
    lowest = [desired]

    def check() -> tuple[bool, str]:
        st = compute.describe_service(step.service)
        if st is None:
            return False, f"{step.service} does not exist"
        lowest[0] = min(lowest[0], st.healthy)
        new = [t for t in st.tasks if t.task_definition == step.task_definition]
        new_healthy = sum(1 for t in new if t.healthy)
        old = [
            t
            for t in st.tasks
            if t.task_definition != step.task_definition and t.state != TaskState.STOPPED
        ]
        return (
            new_healthy >= desired and not old,
            f"{new_healthy}/{desired} new healthy, {len(old)} old left, "
            f"{st.healthy} healthy in all (floor {min_healthy})",
        )

    try:
        wait_until(
            ctx.clock,
            check,
            timeout_s=step.timeout_s,
            interval_s=0.25,
            what=f"rolling update of {step.service}",
            on_progress=lambda n, left: ctx.progress(n, left),
        )
    except DeployopsError as exc:
        raise DeploymentError(f"rolling update did not finish: {exc.message}") from exc
    return {"lowest_healthy_seen": lowest[0], "minimum_healthy": min_healthy}
