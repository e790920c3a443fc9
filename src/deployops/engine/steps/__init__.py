"""One handler per step type, and the table of the deploy and rollback steps.

Each handler is ``handler(step, ctx) -> result``; :func:`deployment_handlers` registers them
by step type. Another operation kind builds its own table (and may merge this one).
"""

from __future__ import annotations

from deployops.domain.native import (
    NativeProductionShift,
    NativeTestTraffic,
    StartNativeDeployment,
    WaitNativeDeployment,
)
from deployops.domain.plan import (
    Bake,
    CheckTrafficMoved,
    CreateTargetGroup,
    Observe,
    RegisterTaskDefinition,
    RollingUpdate,
    ScaleService,
    ScheduleDeleteTargetGroup,
    ShiftTraffic,
    SmokeTest,
    StartService,
    SwitchListener,
    UseTaskDefinition,
    WaitHealthy,
)
from deployops.engine.observe.watch import ObserveHandler
from deployops.engine.operation import HandlerTable
from deployops.engine.steps.checklist import PreDeployGate, pre_deploy_gate
from deployops.engine.steps.cleanup import schedule_delete_target_group
from deployops.engine.steps.native import (
    native_production_shift,
    native_test_traffic,
    start_native_deployment,
    wait_native_deployment,
)
from deployops.engine.steps.prepare import (
    create_target_group,
    register_task_definition,
    use_task_definition,
)
from deployops.engine.steps.services import (
    rolling_update,
    scale_service,
    start_service,
    wait_healthy,
)
from deployops.engine.steps.shift import BakeHandler, shift_traffic
from deployops.engine.steps.traffic import check_traffic_moved, smoke_test, switch_listener

__all__ = ["deployment_handlers"]


def deployment_handlers(observe: ObserveHandler | None = None) -> HandlerTable:
    """The handlers of every deploy and rollback step (blue-green, rolling, canary, linear,
    flip, and the platform's own blue/green)."""
    table = HandlerTable()
    observe = observe or ObserveHandler()
    table.register(RegisterTaskDefinition, register_task_definition)
    table.register(UseTaskDefinition, use_task_definition)
    table.register(CreateTargetGroup, create_target_group)
    table.register(StartService, start_service)
    table.register(WaitHealthy, wait_healthy)
    table.register(SmokeTest, smoke_test)
    table.register(SwitchListener, switch_listener)
    table.register(CheckTrafficMoved, check_traffic_moved)
    table.register(Observe, observe)
    table.register(ShiftTraffic, shift_traffic)  # canary and linear
    table.register(Bake, BakeHandler(observe))
    table.register(ScaleService, scale_service)
    table.register(ScheduleDeleteTargetGroup, schedule_delete_target_group)
    table.register(RollingUpdate, rolling_update)
    table.register(PreDeployGate, pre_deploy_gate)  # CHK-1
    table.register(StartNativeDeployment, start_native_deployment)
    table.register(NativeTestTraffic, native_test_traffic)
    table.register(NativeProductionShift, native_production_shift)
    table.register(WaitNativeDeployment, wait_native_deployment)
    return table
