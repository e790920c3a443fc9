"""The steps of a deployment the platform carries out itself (``aws.mode: ecs-native``).

deployops starts it (:class:`StartNativeDeployment`), holds production at the pause hook
until its smoke checks through the test listener pass (:class:`NativeTestTraffic`), reads the
production listener back once the platform moved it (:class:`NativeProductionShift`), judges
the bake with the ``Observe`` step like any deployment, and waits for the platform to finish
(:class:`WaitNativeDeployment`). A failure goes to :func:`rollback_native`, called by
:mod:`deployops.engine.recovery`: the platform rolls back (ECS ``StopServiceDeployment`` or
``ContinueServiceDeployment(ROLLBACK)`` at the hook) and deployops waits until it has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deployops.domain.native import (
    NativeDeployment,
    NativeProductionShift,
    NativeTestTraffic,
    StartNativeDeployment,
    WaitNativeDeployment,
)
from deployops.engine.operation import StepContext
from deployops.engine.poll import wait_until
from deployops.errors import DeploymentError, DeployopsError
from deployops.ports import NativeDeployments

__all__ = [
    "ROLLBACK_TIMEOUT_S",
    "native_production_shift",
    "native_test_traffic",
    "rollback_native",
    "start_native_deployment",
    "wait_native_deployment",
]

# How long a platform rollback may take before deployops reports it as not confirmed.
ROLLBACK_TIMEOUT_S = 900.0


def _native(ctx: StepContext) -> NativeDeployments:
    port = ctx.ports.extra.get(NativeDeployments)
    if not isinstance(port, NativeDeployments):
        raise DeploymentError(
            "this platform does not carry out deployments itself",
            hint="a plan made for aws.mode ecs-native runs only on such an environment; "
            "check aws.mode in deployops.yaml",
        )
    return port


def _ended_early(dep: NativeDeployment) -> DeploymentError:
    why = f": {dep.reason}" if dep.reason else ""
    return DeploymentError(
        f"the platform ended the deployment {dep.status}{why} (stage {dep.stage or '-'})",
        hint="the ECS console's Deployments tab of the service shows the events; production "
        "stays on the previous revision",
    )


def _wait_for(
    ctx: StepContext,
    deployment: str,
    done: Callable[[NativeDeployment], bool],
    *,
    timeout_s: float,
    interval_s: float,
    what: str,
) -> NativeDeployment:
    """Poll the deployment until ``done``; a deployment the platform ended or is rolling back
    on its own (circuit breaker, alarms, a hook's timeout) fails the step."""
    native = _native(ctx)
    last: list[NativeDeployment] = []

    def check() -> tuple[bool, str]:
        dep = native.describe(deployment)
        last[:] = [dep]
        if done(dep):
            return True, f"{dep.status} at {dep.stage or '-'}"
        if dep.ended or dep.rolling_back:
            raise _ended_early(dep)
        return False, f"{dep.status} at {dep.stage or '-'}"

    try:
        wait_until(
            ctx.clock,
            check,
            timeout_s=timeout_s,
            interval_s=interval_s,
            what=what,
            on_progress=lambda note, left: ctx.progress(f"{what}: {note}", left),
        )
    except DeploymentError:
        raise
    except DeployopsError as exc:
        raise DeploymentError(
            f"{what} did not happen within {timeout_s:g}s ({exc.message})",
            hint="the ECS console's Deployments tab shows where the deployment stands",
        ) from exc
    return last[0]


def start_native_deployment(step: StartNativeDeployment, ctx: StepContext) -> dict[str, Any]:
    arn = _native(ctx).start(step.start())
    ctx.update_detail(native_deployment=arn)
    ctx.event(
        "native.started",
        f"{step.strategy} deployment of {step.service} started on the platform",
        data={"deployment": arn},
    )
    return {"deployment": arn}


def native_test_traffic(step: NativeTestTraffic, ctx: StepContext) -> dict[str, Any]:
    """DEP-2 on the platform's blue/green: the smoke checks run while the pause hook holds
    production on the previous revision; they pass, or the platform rolls back."""
    dep = _wait_for(
        ctx,
        step.deployment,
        lambda d: d.paused is not None or d.released,
        timeout_s=step.timeout_s,
        interval_s=step.interval_s,
        what=f"test traffic of {step.service} on {step.target_group}",
    )
    hook = dep.paused
    if hook is None:
        # Resumed after the hook was answered (the process stopped before it could record
        # that): the smoke checks passed then; never answer the hook twice.
        ctx.event(
            "native.released",
            f"the platform was already released for {step.target_group} ({dep.stage})",
            data={"resumed": True},
        )
        return {"checks": [], "hook": "", "resumed": True}
    lst = ctx.ports.traffic.describe_listener(step.listener)
    if lst.target_group != step.target_group:
        raise DeploymentError(
            f"the deployment paused for test traffic, but {step.listener} forwards to "
            f"{lst.target_group or 'nothing'}, not {step.target_group}",
            hint="check the test listener rule in the Terraform outputs (test_listener_rule_arn)",
        )
    results = []
    for path, expected in step.checks:
        url = f"http://{lst.host}:{lst.port}{path}"
        res = ctx.ports.prober.get(url, timeout_s=5.0)
        results.append({"url": url, "status": res.status, "ms": round(res.elapsed_ms, 1)})
        if res.status != expected:
            got = res.status or res.error
            raise DeploymentError(
                f"smoke check {path} through {step.listener} answered {got}, expected {expected}",
                hint="the new version is not serving correctly; production was not moved",
            )
    _native(ctx).release(step.deployment, hook.hook_id)
    ctx.event(
        "native.released",
        f"smoke checks passed on {step.target_group}; the platform may move production",
        data={"hook": hook.hook_id},
    )
    return {"checks": results, "hook": hook.hook_id}


def native_production_shift(step: NativeProductionShift, ctx: StepContext) -> dict[str, Any]:
    """DEP-3: the platform moved production; the listener reads back the new group."""
    dep = _wait_for(
        ctx,
        step.deployment,
        lambda d: d.production_shifted,
        timeout_s=step.timeout_s,
        interval_s=step.interval_s,
        what=f"production traffic of {step.service} to {step.target_group}",
    )
    traffic = ctx.ports.traffic

    def moved() -> tuple[bool, str]:
        lst = traffic.describe_listener(step.listener)
        return lst.target_group == step.target_group, f"{step.listener} -> {lst.target_group}"

    # The deployment reports the shift as the rule changes: read it back until it agrees.
    try:
        wait_until(
            ctx.clock,
            moved,
            timeout_s=max(step.interval_s * 6, 30.0),
            interval_s=step.interval_s,
            what=f"{step.listener} read back",
        )
    except DeployopsError as exc:
        raise DeploymentError(
            f"the platform reports {dep.stage}, but {exc.message}",
            hint="check the production listener rule (prod_listener_rule_arn) in the console",
        ) from exc
    return {
        "switched_at": ctx.clock.now().isoformat(),
        "listener": step.listener,
        "stage": dep.stage,
    }


def wait_native_deployment(step: WaitNativeDeployment, ctx: StepContext) -> dict[str, Any]:
    dep = _wait_for(
        ctx,
        step.deployment,
        lambda d: d.status == "SUCCESSFUL",
        timeout_s=step.timeout_s,
        interval_s=step.interval_s,
        what=f"the end of {step.service}'s deployment",
    )
    return {"status": dep.status}


def rollback_native(ctx: StepContext, *, interval_s: float) -> tuple[bool, str]:
    """Have the platform roll the deployment back and wait until it has. Returns (rolled
    back, note); never raises (the failure handler reports what it could not do)."""
    arn = str(ctx.results.get("deployment") or ctx.op.detail.get("native_deployment") or "")
    if not arn:
        return False, "no platform deployment was started"
    native = _native(ctx)
    try:
        dep = native.describe(arn)
        if dep.status == "SUCCESSFUL":
            return False, "the platform had finished the deployment: nothing to stop"
        if dep.running:
            hook = dep.paused
            if hook is not None:
                native.release(arn, hook.hook_id, rollback=True)
                how = "answered the pause hook with ROLLBACK"
            else:
                native.stop(arn, rollback=True)
                how = "stopped the deployment with rollback"
        else:
            how = f"the platform was already {dep.status}"
        done = _wait_rolled_back(ctx, native, arn, interval_s=interval_s)
    except DeployopsError as exc:
        return False, f"the platform rollback failed: {exc.message}"
    if done.status != "ROLLBACK_SUCCESSFUL":
        return False, f"{how}; the platform ended {done.status} {done.reason}".strip()
    return True, f"{how}; the platform rolled back"


def _wait_rolled_back(
    ctx: StepContext, native: NativeDeployments, arn: str, *, interval_s: float
) -> NativeDeployment:
    last: list[NativeDeployment] = []

    def check() -> tuple[bool, str]:
        dep = native.describe(arn)
        last[:] = [dep]
        return dep.ended, dep.status

    wait_until(
        ctx.clock,
        check,
        timeout_s=ROLLBACK_TIMEOUT_S,
        interval_s=max(0.5, interval_s),
        what="the platform's rollback",
        on_progress=lambda note, left: ctx.progress(f"rolling back: {note}", left),
    )
    return last[0]
