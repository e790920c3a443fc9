"""Phase 4 (DEP-4): the old target group is deleted later, by a deferred job.

The job runs under the service's deploy lock, by the controller (``deployops serve``), by the
next deploy of the service, or on demand (``deployops cleanup``): see
:mod:`deployops.engine.cleanup`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from deployops.domain.plan import ScheduleDeleteTargetGroup
from deployops.engine.operation import StepContext

__all__ = ["JOB_DELETE_TARGET_GROUP", "schedule_delete_target_group"]

JOB_DELETE_TARGET_GROUP = "delete_target_group"


def schedule_delete_target_group(
    step: ScheduleDeleteTargetGroup, ctx: StepContext
) -> dict[str, Any]:
    due = ctx.clock.now() + timedelta(seconds=step.after_s)
    ctx.store.schedule_job(
        kind=JOB_DELETE_TARGET_GROUP,
        dedup_key=f"{JOB_DELETE_TARGET_GROUP}:{ctx.op.id}:{step.target_group}",
        due_at=due,
        payload={
            "environment": ctx.op.environment,
            "service": ctx.op.target,
            "target_group": step.target_group,
            "deployment_id": ctx.op.id,
        },
    )
    return {"delete_at": due.isoformat()}
