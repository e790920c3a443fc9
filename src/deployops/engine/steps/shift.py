"""The canary and linear shifts: a share of production on the new version, then its bake.

``ShiftTraffic`` sets the production listener's weights (HAProxy's runtime API on local, a
weighted forward action on an ALB) and reads them back. ``Bake`` watches the step: the
rollback rules on the new version for the bake time (the ``Observe`` handler, with the
previous colour as a baseline that takes traffic of its own), then the step's comparison of
the two colours over the same window. A failure of either fails the step; the deployment's
failure handler (:mod:`deployops.engine.recovery`) puts every request back on the previous
colour first, then records, notifies and reports like any automatic rollback.
"""

from __future__ import annotations

from typing import Any

from deployops.domain.plan import Bake, ShiftTraffic
from deployops.engine.observe.watch import ObserveHandler
from deployops.engine.operation import StepContext
from deployops.errors import DeploymentError

__all__ = ["BakeHandler", "shift_traffic"]


def shift_traffic(step: ShiftTraffic, ctx: StepContext) -> dict[str, Any]:
    """Set the weights and check the listener reads them back (idempotent on resume)."""
    listener = ctx.ports.traffic.set_weights(step.listener, step.weights())
    got = dict(listener.forwards).get(step.target_group, 0)
    if got != step.percent:
        raise DeploymentError(
            f"{step.listener} reads back {listener.forwards} after shifting {step.percent}% "
            f"to {step.target_group}",
            hint=f"`deployops health` shows where {step.listener} forwards",
        )
    ctx.event(
        "traffic.shifted",
        f"{step.percent}% of {step.listener} on {step.target_group}",
        data={"percent": step.percent, "forwards": [list(f) for f in listener.forwards]},
    )
    return {
        "percent": step.percent,
        "forwards": [list(f) for f in listener.forwards],
        "shifted_at": ctx.clock.now().isoformat(),
    }


class BakeHandler:
    """Handles ``Bake`` steps with the deployment's ``Observe`` handler (the rollback rules
    frozen into the plan)."""

    def __init__(self, observe: ObserveHandler) -> None:
        self._observe = observe

    def __call__(self, step: Bake, ctx: StepContext) -> dict[str, Any]:
        ctx.progress(
            f"baking {step.target_group} at {step.percent}% for {step.window_s:g}s",
            step.window_s,
            stage="bake",
            percent=step.percent,
        )
        observed = self._observe(step.observe(), ctx)
        ctx.event(
            "bake.passed",
            f"{step.target_group} at {step.percent}%: {observed.get('judgement', 'observed')}",
            data={"percent": step.percent},
        )
        return {"percent": step.percent, "rules": observed}
