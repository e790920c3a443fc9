"""The pre-deploy checklist gate as the first step of a deploy (CHK-1).

The gate is judged before anything is built (a failing gate refuses the deploy with exit 2 and
records nothing but the refusal); a gate that passed is frozen into the plan as this step, so
the deployment's steps carry it with its evidence and a resumed run reads the same verdicts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from deployops.domain.plan import Step, register_step_type
from deployops.engine.operation import StepContext
from deployops.errors import DeploymentError

__all__ = ["PreDeployGate", "pre_deploy_gate"]


@register_step_type
@dataclass(frozen=True, slots=True)
class PreDeployGate(Step):
    phase: ClassVar[str] = "prepare"
    outcome: str  # the gate as JSON (domain.checklist.GateOutcome.to_json)

    def describe(self) -> str:
        gate = json.loads(self.outcome)
        n = len(gate.get("items", []))
        return f"pre-deploy checklist: {n} items, {'passed' if gate.get('passed') else 'shut'}"


def pre_deploy_gate(step: PreDeployGate, ctx: StepContext) -> dict[str, Any]:
    gate = json.loads(step.outcome)
    if not gate.get("passed"):
        raise DeploymentError(
            "the pre-deploy checklist is not complete: " + ", ".join(gate.get("failing", [])),
            hint="`deployops checklist show --version X.Y.Z` shows every item",
        )
    items = gate.get("items", [])
    overridden = [i["item"] for i in items if i.get("status") == "overridden"]
    ctx.progress(f"pre-deploy checklist passed ({len(items)} items)", 0.0)
    return {
        "checklist_passed": True,
        "checklist_overridden": overridden,
        "checklist_items": {i["item"]: i["status"] for i in items},
    }
