"""``/metrics`` through ``prometheus_client``: the controller's loops, every alarm's state,
deployments by outcome, jobs, scaling activities, and the delivery figures per service
(deployment frequency, change-failure rate, time to restore, lead time).

Everything is read from the store and the controller at scrape time by one collector, so
several controller processes on one store export the same numbers.

    registry = metrics_registry(controller=controller, store=store, clock=clock)
    text = render_metrics_text(registry)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from deployops.clock import Clock
from deployops.store import StateStore
from deployops.store.queries import delivery_figures

if TYPE_CHECKING:
    from deployops.engine.controller import Controller

__all__ = ["CONTENT_TYPE", "metrics_registry", "render_metrics_text"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_ALARM_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")


class _StoreCollector(Collector):
    def __init__(
        self,
        *,
        controller: Controller | None,
        store: StateStore,
        clock: Clock,
        environment: str | None,
        delivery_days: int,
    ) -> None:
        self.controller = controller
        self.store = store
        self.clock = clock
        self.environment = environment
        self.delivery_days = delivery_days

    def collect(self) -> Iterator[Metric]:
        yield from self._controller()
        yield from self._store()
        yield from self._delivery()

    def _controller(self) -> Iterator[Metric]:
        stats = sorted(self.controller.stats.items()) if self.controller else []
        duration = SummaryMetricFamily(
            "deployops_controller_loop_duration_seconds",
            "Time spent in each controller loop.",
            labels=["loop"],
        )
        errors = CounterMetricFamily(
            "deployops_controller_loop_errors", "Loop runs that raised.", labels=["loop"]
        )
        last = GaugeMetricFamily(
            "deployops_controller_loop_last_run_timestamp_seconds",
            "When each loop last ran (Unix time).",
            labels=["loop"],
        )
        for loop, st in stats:
            duration.add_metric([loop], count_value=st.runs, sum_value=st.seconds_total)
            errors.add_metric([loop], st.errors)
            if st.last_run is not None:
                last.add_metric([loop], st.last_run)
        yield duration
        yield errors
        yield last

    def _store(self) -> Iterator[Metric]:
        alarm = GaugeMetricFamily(
            "deployops_alarm_state",
            "1 for the state each alarm is in (MON-1).",
            labels=["environment", "service", "alarm", "state"],
        )
        for a in self.store.alarm_states():
            for state in _ALARM_STATES:
                alarm.add_metric(
                    [a.environment, a.service, a.alarm, state], 1 if a.state == state else 0
                )
        yield alarm
        deps = GaugeMetricFamily(
            "deployops_deployments",
            "Deployments in the store by kind and outcome.",
            labels=["environment", "kind", "status"],
        )
        for (env, kind, status), n in sorted(self.store.deployment_counts().items()):
            deps.add_metric([env, kind, status], n)
        yield deps
        jobs = GaugeMetricFamily("deployops_jobs", "Deferred jobs by status.", labels=["status"])
        for status, n in sorted(Counter(j.status for j in self.store.jobs()).items()):
            jobs.add_metric([status], n)
        yield jobs
        scaling = GaugeMetricFamily(
            "deployops_scaling_activities",
            "Recent scaling activities (IAC-5).",
            labels=["environment", "service", "status"],
        )
        counts = Counter(
            (a.environment, a.service, a.status)
            for a in self.store.scaling_activities(limit=10_000)
        )
        for (env, service, status), n in sorted(counts.items()):
            scaling.add_metric([env, service, status], n)
        yield scaling

    def _delivery(self) -> Iterator[Metric]:
        figures = delivery_figures(
            self.store,
            environment=self.environment,
            now=self.clock.now(),
            days=self.delivery_days,
        )
        labels = ["environment", "service"]
        env = self.environment or ""
        freq = GaugeMetricFamily(
            "deployops_deployment_frequency_per_day",
            f"Deployments per day over the last {self.delivery_days} days.",
            labels=labels,
        )
        cfr = GaugeMetricFamily(
            "deployops_change_failure_rate",
            "Share of deployments rolled back or failed (0..1).",
            labels=labels,
        )
        ttr = GaugeMetricFamily(
            "deployops_time_to_restore_seconds",
            "Mean time from a failure detected to traffic healthy again.",
            labels=labels,
        )
        lead = GaugeMetricFamily(
            "deployops_lead_time_seconds",
            "Mean time from a deploy requested to the version live.",
            labels=labels,
        )
        for service, f in figures["services"].items():
            freq.add_metric([env, service], f["deployment_frequency_per_day"])
            cfr.add_metric([env, service], f["change_failure_rate"])
            if f["time_to_restore_s"] is not None:
                ttr.add_metric([env, service], f["time_to_restore_s"])
            if f["lead_time_s"] is not None:
                lead.add_metric([env, service], f["lead_time_s"])
        yield freq
        yield cfr
        yield ttr
        yield lead


def metrics_registry(
    *,
    controller: Controller | None,
    store: StateStore,
    clock: Clock,
    environment: str | None = None,
    delivery_days: int = 14,
) -> CollectorRegistry:
    """A registry of its own (not the process-global one) holding the store's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        _StoreCollector(
            controller=controller,
            store=store,
            clock=clock,
            environment=environment or (controller.environment if controller else None),
            delivery_days=delivery_days,
        )
    )
    return registry


def render_metrics_text(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode("utf-8")
