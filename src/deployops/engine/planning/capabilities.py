"""Plans are checked against what the platform's drivers declare they can do.

Each step type names the ``(port, capability)`` pairs it needs (``Step.requires``); each driver
declares ``capabilities``. A plan with a step the platform cannot run is refused when it is
made (exit 2, nothing changed), naming the capability and the driver.

>>> require_capabilities(plan, ports)  # doctest: +SKIP
"""

from __future__ import annotations

from deployops.domain.plan import Plan
from deployops.engine.operation import Ports
from deployops.errors import UnsupportedError

__all__ = ["missing_capabilities", "require_capabilities"]


def missing_capabilities(plan: Plan, ports: Ports) -> list[tuple[str, str, str, str]]:
    """``(step, port, driver, capability)`` for every requirement no driver declares."""
    drivers = {
        "compute": ports.compute,
        "traffic": ports.traffic,
        "metrics": ports.metrics,
        "prober": ports.prober,
    }
    out: list[tuple[str, str, str, str]] = []
    for step in plan.steps:
        for port, capability in sorted(type(step).requires):
            driver = drivers.get(port)
            declared: frozenset[str] = getattr(driver, "capabilities", frozenset())
            if capability not in declared:
                name = str(getattr(driver, "name", type(driver).__name__))
                out.append((step.kind, port, name, capability))
    return out


def require_capabilities(plan: Plan, ports: Ports, *, where: str = "--strategy") -> None:
    """Refuse a plan the platform cannot run (``UnsupportedError``: exit 2)."""
    missing = missing_capabilities(plan, ports)
    if not missing:
        return
    what = "; ".join(
        f"{step} needs the {port} capability {cap!r}, which the {driver} {port} driver "
        "does not have"
        for step, port, driver, cap in missing
    )
    raise UnsupportedError(
        f"this platform cannot run the {plan.strategy} plan: {what}",
        path=where,
        hint="choose a strategy this platform supports (blue-green), or an environment whose "
        "platform has the capability",
    )
