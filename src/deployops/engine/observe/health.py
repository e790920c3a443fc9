"""What the engine checks while it watches a new version (DEP-3 phase 3, CHK-2).

An :class:`Observer` looks at the new target group once per sample interval and answers with a
:class:`Verdict`. :class:`HealthObserver` holds the checklist's during-deploy limits (error rate
below ``max_error_rate``, every container healthy); the rollback rules of RB-1 plug in as
another observer with the same shape (:mod:`deployops.engine.observe.rules_observer`).

A verdict may ask the engine to keep watching past the stability window (``hold_s``): a
warning waiting for its escalation, or a scale-out waiting to be judged, must not end in a
"succeeded" that scales the previous version to 0 under it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from deployops.domain.model import MetricName, MetricQuery, Statistic
from deployops.domain.plan import Observe
from deployops.domain.policy import Action
from deployops.ports import Compute, Metrics

__all__ = ["HealthObserver", "Observer", "ObserverFactory", "ScaleAware", "Verdict"]


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action  # NONE (carry on) | NOTIFY | SCALE_OUT | ROLLBACK
    reason: str = ""
    rule: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    # Seconds the observer still needs before it can settle (escalation, scale-out pending).
    hold_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.action is Action.NONE


@runtime_checkable
class Observer(Protocol):
    def evaluate(self, step: Observe, *, since: datetime, now: datetime) -> Verdict: ...


class ObserverFactory(Protocol):
    """Builds the observer of one deployment from the settings frozen into its plan
    (``Plan.settings``: the rollback rules with their windows), never from the live
    ``deployops.yaml``."""

    def __call__(self, service: str, settings: Mapping[str, Any]) -> Observer: ...


@runtime_checkable
class ScaleAware(Protocol):
    """An observer that asks for scale-outs hears what the engine did about them."""

    def scaled_out(
        self, rule: str, *, at: datetime, desired: int, no_room: bool, detail: str
    ) -> None: ...

    def scale_limits(self) -> tuple[int, int]:
        """(maximum replicas, replicas added per scale-out)."""
        ...


class HealthObserver:
    """CHK-2: error rate under the limit (judged once ``min_requests`` arrived) and every
    container healthy. A metric source that fails is reported, never taken as healthy."""

    def __init__(
        self,
        *,
        compute: Compute,
        metrics: Metrics,
        min_requests: int = 20,
        max_query_errors: int = 3,
    ) -> None:
        self._compute = compute
        self._metrics = metrics
        self._min_requests = min_requests
        self._max_query_errors = max_query_errors
        self._query_errors = 0

    def evaluate(self, step: Observe, *, since: datetime, now: datetime) -> Verdict:
        svc = self._compute.describe_service(step.service)
        if svc is None or svc.healthy < svc.desired:
            healthy = svc.healthy if svc else 0
            desired = svc.desired if svc else 0
            return Verdict(
                action=Action.ROLLBACK,
                rule="healthy-containers",
                reason=f"{healthy} of {desired} containers of {step.service} healthy",
                evidence={"healthy": healthy, "desired": desired},
            )
        window = max(step.interval_s, (now - since).total_seconds())
        m = self._metrics.query(
            MetricQuery(
                metric=MetricName.ERROR_RATE,
                scope=step.target_group,
                statistic=Statistic.AVERAGE,
                start=now - timedelta(seconds=window),
                end=now + timedelta(seconds=1),
                period_s=max(1, int(window) + 1),
            )
        )
        if not m.ok:
            self._query_errors += 1
            if self._query_errors >= self._max_query_errors:
                return Verdict(
                    action=Action.NOTIFY,
                    rule="metrics-unavailable",
                    reason=f"{self._query_errors} metric queries in a row failed: {m.error}",
                    evidence={"error": m.error},
                )
            return Verdict(action=Action.NONE, reason=f"metric query failed: {m.error}")
        self._query_errors = 0
        requests = sum(d.samples for d in m.datapoints)
        if not m.datapoints or requests < self._min_requests:
            return Verdict(
                action=Action.NONE,
                reason=f"{requests} requests so far: too few to judge the error rate",
                evidence={"requests": requests},
            )
        rate = sum(d.value * d.samples for d in m.datapoints) / requests
        if rate >= step.max_error_rate:
            return Verdict(
                action=Action.ROLLBACK,
                rule="error-rate",
                reason=(
                    f"error rate {rate:.2f}% over {requests} requests is above the "
                    f"{step.max_error_rate:g}% limit (CHK-2)"
                ),
                evidence={"error_rate": rate, "requests": requests, "limit": step.max_error_rate},
            )
        return Verdict(
            action=Action.NONE,
            reason=f"error rate {rate:.2f}% over {requests} requests; "
            f"{svc.healthy}/{svc.desired} healthy",
            evidence={"error_rate": rate, "requests": requests},
        )
