"""Target-tracking auto scaling math (IAC-3, IAC-5). Pure: ``now`` is an argument.

The guide's numbers are the defaults: track CPU at 70 %, between 2 and 10 tasks, on
1-minute metrics, with a 300 s cooldown. The desired count is the one that would bring the
metric back to the target, ``ceil(current × metric / target)``, unless the metric is within the
tolerance band around the target (no churn for 72 % against 70 %).

Scale-out and scale-in have separate cooldowns, and scale-in is the cautious one (as in
Application Auto Scaling, where losing capacity costs more than keeping it):

- the scale-out cooldown runs from the last scale-out only, so a scale-out may follow a
  scale-in at once;
- the scale-in cooldown runs from the last scaling activity of *either* kind, so capacity just
  added is never removed within the cooldown;
- one scale-in removes at most ``scale_in_max_step`` tasks.

>>> from datetime import UTC, datetime
>>> now = datetime(2026, 1, 1, tzinfo=UTC)
>>> decide(2, 95.0, None, None, now, ScalingPolicy())
ScalingDecision(desired=3, reason='CPUUtilization 95 above target 70: scale out 2 → 3')
>>> decide(4, 72.0, None, None, now, ScalingPolicy()).desired
4
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from deployops.domain.model import MetricName, Statistic

__all__ = ["DEFAULT_SCALING_POLICY", "ScalingDecision", "ScalingPolicy", "decide", "validate"]

# Floating-point slack: ceil() of a product that should be an integer but is a hair above it
# must not add a task, and 77 against 70 ± 10 % is inside the band.
_EPS = 1e-9


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalingPolicy:
    """Target tracking on one metric. Every number is configurable; see :func:`validate`."""

    metric: MetricName = MetricName.CPU
    statistic: Statistic = Statistic.AVERAGE
    target: float = 70.0  # IAC-5
    min_capacity: int = 2  # IAC-3
    max_capacity: int = 10  # IAC-3
    period_s: int = 60  # IAC-5: 1-minute resolution
    scale_out_cooldown_s: float = 300.0  # IAC-5
    scale_in_cooldown_s: float = 300.0  # IAC-5
    tolerance: float = 0.10  # no change while metric / target is within 1 ± tolerance
    scale_in_max_step: int = 2


DEFAULT_SCALING_POLICY = ScalingPolicy()


@dataclass(frozen=True, slots=True)
class ScalingDecision:
    desired: int
    reason: str


def decide(
    current: int,
    metric_value: float | None,
    last_scale_out_at: datetime | None,
    last_scale_in_at: datetime | None,
    now: datetime,
    policy: ScalingPolicy,
) -> ScalingDecision:
    """The desired task count given the current one and the latest metric value.

    ``metric_value`` is None when there is no datapoint: nothing changes on no data.
    """
    name = policy.metric.value
    lo, hi = policy.min_capacity, policy.max_capacity
    if current < lo:
        return ScalingDecision(lo, f"{current} tasks is below the minimum {lo}: scale to {lo}")
    if current > hi:
        return ScalingDecision(hi, f"{current} tasks is above the maximum {hi}: scale to {hi}")
    if metric_value is None or not math.isfinite(metric_value):
        return ScalingDecision(current, f"no {name} datapoint: keep {current}")
    value = f"{name} {metric_value:g}"
    target = policy.target
    if abs(metric_value / target - 1.0) <= policy.tolerance + _EPS:
        return ScalingDecision(
            current,
            f"{value} within {policy.tolerance:.0%} of target {target:g}: keep {current}",
        )
    wanted = min(hi, max(lo, math.ceil(current * metric_value / target - _EPS)))

    if metric_value > target:
        if wanted <= current:
            return ScalingDecision(current, f"{value} above target {target:g} at maximum {hi}")
        left = _remaining(last_scale_out_at, now, policy.scale_out_cooldown_s)
        if left > 0:
            return ScalingDecision(
                current,
                f"{value} above target {target:g}, scale-out cooldown: {left:g}s left",
            )
        return ScalingDecision(
            wanted, f"{value} above target {target:g}: scale out {current} → {wanted}"
        )

    if wanted >= current:
        return ScalingDecision(current, f"{value} below target {target:g} at minimum {lo}")
    last = max((t for t in (last_scale_out_at, last_scale_in_at) if t is not None), default=None)
    left = _remaining(last, now, policy.scale_in_cooldown_s)
    if left > 0:
        return ScalingDecision(
            current, f"{value} below target {target:g}, scale-in cooldown: {left:g}s left"
        )
    desired = max(wanted, current - policy.scale_in_max_step)
    return ScalingDecision(
        desired, f"{value} below target {target:g}: scale in {current} → {desired}"
    )


def _remaining(since: datetime | None, now: datetime, cooldown_s: float) -> float:
    if since is None:
        return 0.0
    return max(0.0, cooldown_s - (now - since).total_seconds())


def validate(policy: ScalingPolicy, path: str = "scaling") -> list[tuple[str, str]]:
    """Impossible settings as ``(path, message)`` pairs (empty: valid)."""
    issues: list[tuple[str, str]] = []

    def add(field: str, message: str) -> None:
        issues.append((f"{path}.{field}" if path else field, message))

    if policy.min_capacity < 1:
        add("min_capacity", "must be at least 1 (IAC-3 uses 2)")
    if policy.max_capacity < policy.min_capacity:
        add(
            "max_capacity",
            f"must be at least min_capacity ({policy.min_capacity}); IAC-3 uses 2 to 10",
        )
    if not (0 < policy.target <= 100) and policy.metric in (MetricName.CPU, MetricName.MEMORY):
        add("target", "a utilisation target is a percentage above 0 and at most 100, e.g. 70")
    elif policy.target <= 0:
        add("target", "must be more than 0")
    if policy.period_s <= 0:
        add("period_s", "must be more than 0 seconds, e.g. 60")
    if policy.scale_out_cooldown_s < 0:
        add("scale_out_cooldown_s", "must be 0 or more seconds, e.g. 300")
    if policy.scale_in_cooldown_s < 0:
        add("scale_in_cooldown_s", "must be 0 or more seconds, e.g. 300")
    if not (0 <= policy.tolerance < 1):
        add("tolerance", "a fraction of the target from 0 up to (not including) 1, e.g. 0.1")
    if policy.scale_in_max_step < 1:
        add("scale_in_max_step", "must be at least 1 task, or scale-in could never happen")
    return issues
