"""Alarm evaluation (MON-1) on the platform's ports, with actions (MON-2, IAC-5).

Every period :meth:`AlarmEvaluator.evaluate` queries each alarm's metric for each service's live
scope (the target group behind ``{service}-prod``), judges it with the one rule engine
(:func:`deployops.domain.alarms.evaluate_alarm`), keeps the state and every state change in the
store, and acts on a change:

- entering ``ALARM``: a ``scale_out`` alarm asks the autoscaler for capacity; every alarm sends
  a notice (``alarm.alarm``) at its severity, so a critical one pages;
- leaving ``ALARM``: the notice is resolved with the same ``dedup_key`` (PagerDuty ``resolve``,
  a "resolved" message on Slack and e-mail).

Notifying never raises and never blocks on a channel that is down (the router retries and
records); a failing scale-out is recorded as a failed scaling activity.

    evaluator = AlarmEvaluator(alarms=DEFAULT_ALARMS, environment="production",
                               services=["web"], metrics=plat.metrics, traffic=plat.traffic,
                               store=store, clock=clock, notify=router.notify,
                               scale_out=autoscaler.scale_out_for_alarm)
    evaluator.evaluate()
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from deployops.clock import Clock
from deployops.domain.alarms import (
    AlarmAction,
    AlarmDefinition,
    AlarmState,
    AlarmTransition,
    transition,
)
from deployops.domain.model import Measurement, MetricName, MetricQuery
from deployops.domain.names import prod_listener
from deployops.domain.rules import Series, evaluate
from deployops.engine.events import Notice
from deployops.errors import DeployopsError
from deployops.ports import Metrics, Traffic
from deployops.store import AlarmHistoryRecord, AlarmStateRecord, StateStore

__all__ = ["AlarmEvaluator", "AlarmResult", "RoutedMetrics", "dedup_key"]

log = logging.getLogger(__name__)

ScaleOut = Callable[[str, str, str], object]  # (service, alarm, reason)
NotifyFn = Callable[[Notice], object]


def dedup_key(environment: str, service: str, alarm: str) -> str:
    """One incident per alarm and service: the trigger and the resolve share it."""
    return f"alarm:{environment}:{service}:{alarm}"


@dataclass(frozen=True, slots=True)
class AlarmResult:
    service: str
    alarm: str
    state: AlarmState
    transition: AlarmTransition | None


class RoutedMetrics:
    """One :class:`~deployops.ports.Metrics` that sends some metrics to another source (the
    local platform's ``DatabaseConnections`` comes from PostgreSQL, the rest from the
    collector)."""

    name: ClassVar[str] = "routed"
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *, default: Metrics, routes: Mapping[MetricName, Metrics]) -> None:
        self.default = default
        self.routes = dict(routes)

    def query(self, query: MetricQuery) -> Measurement:
        return self.routes.get(query.metric, self.default).query(query)


class AlarmEvaluator:
    def __init__(
        self,
        *,
        alarms: Sequence[AlarmDefinition],
        environment: str,
        services: Sequence[str],
        metrics: Metrics,
        traffic: Traffic,
        store: StateStore,
        clock: Clock,
        notify: NotifyFn | None = None,
        scale_out: ScaleOut | None = None,
    ) -> None:
        self.alarms = tuple(alarms)
        self.environment = environment
        self.services = tuple(services)
        self.metrics = metrics
        self.traffic = traffic
        self.store = store
        self.clock = clock
        self.notify = notify
        self.scale_out = scale_out
        # Consecutive failed queries per (service, alarm): a failed query is a value (see
        # ``Rule.max_query_errors``), not a breach.
        self._errors: dict[tuple[str, str], tuple[int, str]] = {}
        # service -> (live scope, when it went live, when last seen live): see live_since.
        self._live: dict[str, tuple[str, datetime | None, datetime]] = {}

    @property
    def period_s(self) -> int:
        """How often to evaluate: the shortest alarm period."""
        return min((a.rule.period_s for a in self.alarms), default=60)

    def scope(self, service: str) -> str:
        """The live target group of ``service`` (the scope its metrics are kept under)."""
        try:
            return self.traffic.describe_listener(prod_listener(service)).target_group or service
        except DeployopsError:
            return service

    def live_since(self, service: str, scope: str, now: datetime) -> datetime | None:
        """When ``scope`` started taking ``service``'s production traffic (None: unknown).

        A target group's metrics from before its switch (green starting up, smoke-tested on
        the test listener) are not production's: judged with them, every blue-green deploy
        would page LowHealthyHosts for a minute after the switch. Known from the last listener
        switch onto it that a deployment recorded and, when this evaluator saw the previous
        scope live, no earlier than that.
        """
        seen = self._live.get(service)
        if seen is not None and seen[0] == scope:
            since = seen[1]
        else:
            since = self._recorded_switch(service, scope)
            if seen is not None:  # the switch came after the last look at the previous scope
                since = max(since, seen[2]) if since is not None else seen[2]
        self._live[service] = (scope, since, now)
        return since

    def _recorded_switch(self, service: str, scope: str) -> datetime | None:
        listener = prod_listener(service)
        for rec in self.store.list_deployments(
            environment=self.environment, service=service, limit=5
        ):
            for step in reversed(self.store.steps_for(rec.id)):
                p = step.params
                if (
                    step.status == "succeeded"
                    and p.get("listener") == listener
                    and p.get("target_group") == scope
                ):
                    return step.finished_at
        return None

    def evaluate(self) -> list[AlarmResult]:
        """Evaluate every alarm for every service once; act on state changes."""
        now = self.clock.now()
        results: list[AlarmResult] = []
        for service in self.services:
            scope = self.scope(service)
            since = self.live_since(service, scope, now)
            for alarm in self.alarms:
                results.append(self._one(service, scope, alarm, now, since))
        return results

    def _one(
        self,
        service: str,
        scope: str,
        alarm: AlarmDefinition,
        now: datetime,
        since: datetime | None = None,
    ) -> AlarmResult:
        rule = alarm.rule
        start = now - timedelta(seconds=rule.lookback_s)
        if since is not None and start < since < now:
            start = since  # only the scope's datapoints as production's (see live_since)
        m = self.metrics.query(
            MetricQuery(
                metric=rule.metric,
                scope=scope,
                statistic=rule.statistic,
                start=start,
                end=now,
                period_s=rule.period_s,
            )
        )
        key = (service, alarm.name)
        if m.ok:
            self._errors.pop(key, None)
            series = Series(datapoints=m.datapoints)
        else:
            count, _ = self._errors.get(key, (0, ""))
            self._errors[key] = (count + 1, m.error)
            series = Series(consecutive_errors=count + 1, last_error=m.error)
        stored = self.store.alarm_state(self.environment, service, alarm.name)
        # CloudWatch starts every alarm in INSUFFICIENT_DATA.
        previous = AlarmState(stored.state) if stored else AlarmState.INSUFFICIENT_DATA
        evaluation = evaluate(rule, series, now=now)
        state, change = transition(alarm, previous, evaluation)
        record = AlarmStateRecord(
            environment=self.environment,
            service=service,
            alarm=alarm.name,
            state=state.value,
            reason=evaluation.reason,
            since=stored.since if stored and change is None else now,
            evaluated_at=now,
        )
        history = None
        if change is not None:
            evidence: dict[str, Any] = change.evidence()
            evidence["scope"] = scope
            history = AlarmHistoryRecord(
                ts=now,
                environment=self.environment,
                service=service,
                alarm=alarm.name,
                previous=change.previous.value,
                state=change.state.value,
                reason=change.reason,
                action=change.action.value if change.action else "",
                severity=change.severity.value,
                evidence=evidence,
            )
        self.store.save_alarm_state(record, transition=history)
        if change is not None:
            self._act(service, scope, alarm, change)
        return AlarmResult(service, alarm.name, state, change)

    # ------------------------------------------------------------------ actions
    def _act(
        self, service: str, scope: str, alarm: AlarmDefinition, change: AlarmTransition
    ) -> None:
        fields = {
            "alarm": alarm.name,
            "environment": self.environment,
            "service": service,
            "scope": scope,
            "state": change.state.value,
            "condition": alarm.rule.describe(),
        }
        key = dedup_key(self.environment, service, alarm.name)
        if change.state is AlarmState.ALARM:
            if change.action is AlarmAction.SCALE_OUT and self.scale_out is not None:
                try:
                    self.scale_out(service, alarm.name, change.reason)
                except DeployopsError as exc:
                    log.warning("%s: scale-out failed: %s", alarm.name, exc)
            self._send(
                Notice(
                    severity=alarm.severity.value,
                    kind="alarm.alarm",
                    title=f"{alarm.name} in ALARM for {service} ({self.environment})",
                    text=f"{alarm.description or alarm.rule.describe()}: {change.reason}",
                    dedup_key=key,
                    fields=fields,
                )
            )
        elif change.resolves:
            self._send(
                Notice(
                    severity=alarm.severity.value,
                    kind="alarm.ok",
                    title=f"{alarm.name} is {change.state.value} for {service} "
                    f"({self.environment})",
                    text=f"resolved: {change.reason}",
                    dedup_key=key,
                    fields=fields,
                    resolve=True,
                )
            )

    def _send(self, notice: Notice) -> None:
        if self.notify is None:
            return
        try:
            self.notify(notice)
        except Exception as exc:  # noqa: BLE001 - a notification must never stop evaluation
            log.warning("notify failed for %s: %s", notice.title, type(exc).__name__)
