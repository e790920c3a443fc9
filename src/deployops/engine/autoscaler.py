"""Target-tracking auto scaling (IAC-5) on the platform's ports.

Each :meth:`Autoscaler.step` observes (the live colour's compute service and the tracked metric
over the last period), decides with the pure :func:`deployops.domain.scaling.decide`, acts
(``Compute.update_service``) and records the activity with its reason. Cooldowns are measured
from the recorded activities, so a restarted controller honours them too.

The live compute service is the one behind the ``{service}-prod`` listener (``web-blue``).
Scaling holds the deploy lock for the instant of the change: a deployment in progress is never
resized under it (it owns the desired counts), the autoscaler just waits for the next period.

    scaler = Autoscaler(policy=ScalingPolicy(), environment="production", services=["web"],
                        compute=plat.compute, traffic=plat.traffic, metrics=plat.metrics,
                        store=store, clock=clock)
    scaler.step()
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from deployops.clock import Clock
from deployops.domain.model import MetricQuery
from deployops.domain.names import lock_key, prod_listener, target_group
from deployops.domain.scaling import ScalingDecision, ScalingPolicy, decide
from deployops.errors import DeployopsError, LockHeldError
from deployops.ports import Compute, Metrics, Traffic
from deployops.store import ScalingActivity, StateStore

__all__ = ["CAUSE_TARGET_TRACKING", "Autoscaler", "ScalingOutcome"]

log = logging.getLogger(__name__)

CAUSE_TARGET_TRACKING = "target_tracking"


@dataclass(frozen=True, slots=True)
class ScalingOutcome:
    """What one look at one service decided; ``activity`` is set when the count changed (or a
    change was attempted and failed)."""

    service: str
    compute_service: str
    current: int
    decision: ScalingDecision
    metric_value: float | None
    activity: ScalingActivity | None = None


class Autoscaler:
    def __init__(
        self,
        *,
        policy: ScalingPolicy,
        environment: str,
        services: Sequence[str],
        compute: Compute,
        traffic: Traffic,
        metrics: Metrics,
        store: StateStore,
        clock: Clock,
        owner: str = "deployops-autoscaler",
        alarm_step: int = 1,
    ) -> None:
        self.policy = policy
        self.environment = environment
        self.services = tuple(services)
        self.compute = compute
        self.traffic = traffic
        self.metrics = metrics
        self.store = store
        self.clock = clock
        self.owner = owner
        self.alarm_step = alarm_step

    # ------------------------------------------------------------------ observe
    def live_service(self, service: str) -> str:
        """The compute service taking production traffic (``web-blue``)."""
        listener = self.traffic.describe_listener(prod_listener(service))
        return listener.target_group or target_group(service, "blue")

    def metric_value(self, scope: str, now: datetime) -> float | None:
        """The tracked statistic over the last period (1-minute resolution, IAC-5)."""
        p = self.policy
        m = self.metrics.query(
            MetricQuery(
                metric=p.metric,
                scope=scope,
                statistic=p.statistic,
                start=now - timedelta(seconds=p.period_s),
                end=now,
                period_s=p.period_s,
            )
        )
        if not m.ok or not m.datapoints:
            return None
        total = sum(d.samples for d in m.datapoints)
        if total > 0:  # several points in the period: sample-weighted mean
            return sum(d.value * d.samples for d in m.datapoints) / total
        return sum(d.value for d in m.datapoints) / len(m.datapoints)

    def last_activity(self, service: str) -> tuple[datetime | None, datetime | None]:
        """When this service last scaled out and in (succeeded activities)."""
        out: datetime | None = None
        inn: datetime | None = None
        for a in self.store.scaling_activities(
            environment=self.environment, service=service, limit=200
        ):
            if a.status != "succeeded":
                continue
            if a.desired > a.previous:
                out = a.ts
            elif a.desired < a.previous:
                inn = a.ts
        return out, inn

    # ------------------------------------------------------------------ decide and act
    def step(self) -> list[ScalingOutcome]:
        """One target-tracking evaluation of every service."""
        outcomes = []
        for service in self.services:
            try:
                outcomes.append(self.step_service(service))
            except DeployopsError as exc:
                # The platform is down or the service is not deployed yet: nothing to scale.
                log.warning("autoscaler: %s: %s", service, exc)
        return outcomes

    def step_service(self, service: str) -> ScalingOutcome:
        now = self.clock.now()
        name = self.live_service(service)
        state = self.compute.describe_service(name)
        if state is None or state.desired == 0:
            decision = ScalingDecision(0, f"{name} is not running: nothing to scale")
            return ScalingOutcome(service, name, 0, decision, None)
        value = self.metric_value(name, now)
        last_out, last_in = self.last_activity(service)
        decision = decide(state.desired, value, last_out, last_in, now, self.policy)
        activity = None
        if decision.desired != state.desired:
            activity = self._apply(
                service, name, state.desired, decision.desired, CAUSE_TARGET_TRACKING, decision
            )
        return ScalingOutcome(service, name, state.desired, decision, value, activity)

    def scale_out_for_alarm(self, service: str, alarm: str, reason: str) -> ScalingActivity | None:
        """An alarm whose action is ``scale_out`` fired (MON-1): add ``alarm_step`` tasks up to
        the maximum, unless a scale-out happened within the scale-out cooldown."""
        now = self.clock.now()
        name = self.live_service(service)
        state = self.compute.describe_service(name)
        if state is None or state.desired == 0:
            return None
        current = state.desired
        cause = f"alarm:{alarm}"
        if current >= self.policy.max_capacity:
            log.info("%s: %s at maximum %d", alarm, name, self.policy.max_capacity)
            return None
        last_out, _ = self.last_activity(service)
        if last_out is not None:
            left = self.policy.scale_out_cooldown_s - (now - last_out).total_seconds()
            if left > 0:
                log.info("%s: scale-out cooldown, %gs left", alarm, left)
                return None
        desired = min(self.policy.max_capacity, current + self.alarm_step)
        decision = ScalingDecision(desired, f"{alarm}: {reason}; scale out {current} → {desired}")
        return self._apply(service, name, current, desired, cause, decision)

    def _apply(
        self,
        service: str,
        name: str,
        current: int,
        desired: int,
        cause: str,
        decision: ScalingDecision,
    ) -> ScalingActivity:
        now = self.clock.now()
        key = lock_key(self.environment, service)
        status, error = "succeeded", ""
        try:
            self.store.acquire_lock(
                key, owner=self.owner, reason=f"autoscale {name} to {desired}", now=now
            )
        except LockHeldError as exc:
            status, error = "skipped", f"deploy lock held: {exc.message}"
        else:
            try:
                self.compute.update_service(name, desired_count=desired)
            except DeployopsError as exc:
                status, error = "failed", exc.message
            finally:
                self.store.release_lock(key, owner=self.owner)
        activity = ScalingActivity(
            ts=now,
            environment=self.environment,
            service=service,
            compute_service=name,
            cause=cause,
            previous=current,
            desired=desired,
            status=status,
            reason=decision.reason,
            error=error,
        )
        self.store.add_scaling_activity(activity)
        return activity
