"""Smoke checks through the test listener (DEP-2) and the switch (DEP-3)."""

from __future__ import annotations

from typing import Any

from deployops.domain.plan import CheckTrafficMoved, SmokeTest, SwitchListener
from deployops.engine.operation import StepContext
from deployops.errors import DeploymentError

__all__ = ["check_traffic_moved", "smoke_test", "switch_listener"]


def smoke_test(step: SmokeTest, ctx: StepContext) -> dict[str, Any]:
    lst = ctx.ports.traffic.switch_listener(step.listener, step.target_group)
    if lst.target_group != step.target_group:
        raise DeploymentError(f"test listener {step.listener} did not switch")
    results = []
    for path, expected in step.checks:
        url = f"http://{lst.host}:{lst.port}{path}"
        res = ctx.ports.prober.get(url, timeout_s=5.0)
        results.append({"url": url, "status": res.status, "ms": round(res.elapsed_ms, 1)})
        if res.status != expected:
            got = res.status or res.error
            raise DeploymentError(
                f"smoke check {path} through {step.listener} answered {got}, expected {expected}",
                hint="the new version is not serving correctly; traffic was not switched",
            )
    return {"checks": results}


def switch_listener(step: SwitchListener, ctx: StepContext) -> dict[str, Any]:
    listener = ctx.ports.traffic.switch_listener(step.listener, step.target_group)
    if listener.target_group != step.target_group:
        raise DeploymentError(
            f"{step.listener} still forwards to {listener.target_group} after the switch"
        )
    return {"switched_at": ctx.clock.now().isoformat(), "listener": listener.name}


def check_traffic_moved(step: CheckTrafficMoved, ctx: StepContext) -> dict[str, Any]:
    lst = ctx.ports.traffic.describe_listener(step.listener)
    if lst.target_group != step.target_group:
        raise DeploymentError(
            f"{step.listener} forwards to {lst.target_group}, not {step.target_group}"
        )
    # Traffic moved when the listener reads back the new group and requests through it reach
    # a healthy container of the new version. The health path answers that; how well the
    # application serves is the observer's question, not this step's.
    url = f"http://{lst.host}:{lst.port}{step.health_path}"
    probes = 3
    for _ in range(probes):
        res = ctx.ports.prober.get(url, timeout_s=5.0)
        if res.status != 200:
            raise DeploymentError(
                f"after the switch {url} answered {res.status or res.error}, expected 200"
            )
    return {"forwards_to": lst.target_group, "probes": probes}
