"""Metrics that follow a script on the virtual clock, over the in-memory platform.

``set(metric, value)`` says "from now on, this metric reads ``value``" (``None``: no data); a
query returns one datapoint per period with the value in force at that period's start, so an
alarm sees a real history (two periods of 85 % CPU, then 50 %). Metrics never scripted come from
the wrapped :class:`~deployops.drivers.memory.MemoryMetrics`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar

from deployops.clock import Clock
from deployops.domain.model import Datapoint, Measurement, MetricName, MetricQuery
from deployops.ports import Metrics


class ScriptedMetrics:
    name: ClassVar[str] = "scripted"
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *, clock: Clock, fallback: Metrics | None = None) -> None:
        self.clock = clock
        self.fallback = fallback
        self.timeline: dict[MetricName, list[tuple[datetime, float | None]]] = {}
        self.queries: list[MetricQuery] = []
        self.fail: set[MetricName] = set()

    def set(self, metric: MetricName, value: float | None) -> None:
        self.timeline.setdefault(metric, []).append((self.clock.now(), value))

    def value_at(self, metric: MetricName, t: datetime) -> float | None:
        current: float | None = None
        for ts, v in self.timeline.get(metric, []):
            if ts <= t:
                current = v
        return current

    def query(self, query: MetricQuery) -> Measurement:
        self.queries.append(query)
        if query.metric in self.fail:
            return Measurement(query=query, error="metrics backend unavailable (scripted)")
        if query.metric not in self.timeline:
            if self.fallback is not None:
                return self.fallback.query(query)
            return Measurement(query=query)
        points = []
        t = query.start
        while t < query.end:
            v = self.value_at(query.metric, t)
            if v is not None:
                points.append(Datapoint(timestamp=t, value=v, samples=1))
            t += timedelta(seconds=query.period_s)
        return Measurement(query=query, datapoints=tuple(points))
