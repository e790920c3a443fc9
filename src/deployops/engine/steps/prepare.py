"""Phase 1 (DEP-1): the task definition and the new target group."""

from __future__ import annotations

from typing import Any

from deployops.domain.plan import CreateTargetGroup, RegisterTaskDefinition, UseTaskDefinition
from deployops.engine.operation import StepContext

__all__ = ["create_target_group", "register_task_definition", "use_task_definition"]


def register_task_definition(step: RegisterTaskDefinition, ctx: StepContext) -> dict[str, Any]:
    td = ctx.ports.compute.register_task_definition(step.spec)
    ctx.update_detail(task_definition=td.ref)
    return {"task_definition": td.ref}


def use_task_definition(step: UseTaskDefinition, ctx: StepContext) -> dict[str, Any]:
    ref = ctx.ports.compute.describe_task_definition(step.task_definition).ref
    ctx.update_detail(task_definition=ref)
    return {"task_definition": ref}


def create_target_group(step: CreateTargetGroup, ctx: StepContext) -> dict[str, Any]:
    tg = ctx.ports.traffic.create_target_group(step.target_group, health_check=step.health_check)
    return {"target_group": tg.name}
