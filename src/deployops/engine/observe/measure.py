"""What an observation saw, kept: windows of each colour read from the metric source, stored
per deployment (``measurements``) so the incident report can explain a verdict in numbers and
``deployops rules backtest`` can replay the rules and the canary comparison later.

A window is one period of one scope: requests and errors (from ``ErrorRate``'s average and
its request count, which every metric source answers), the latency distribution when the
source keeps one (:class:`~deployops.ports.LatencySketches`, the local platform) and the
latency percentiles and gauges (CPU, memory, health checks, database connections) otherwise.

>>> windows = read_windows(metrics, scope="web-green", start=t0, end=t1,
...                        period_s=60)  # doctest: +SKIP
>>> ctx.store.add_measurements(records(windows, ...))  # doctest: +SKIP
>>> judge(colour_window(old), colour_window(new), policy)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from deployops.domain import backtest
from deployops.domain.backtest import MAX_JUDGED_SAMPLES, ObservedWindow
from deployops.domain.judge import ColourWindow
from deployops.domain.model import MetricName, MetricQuery, Statistic
from deployops.domain.sketch import LatencySketch
from deployops.ports import LatencySketches, Metrics
from deployops.store import MeasurementRecord

__all__ = [
    "GAUGES",
    "LATENCY_STATISTICS",
    "MAX_JUDGED_SAMPLES",
    "Window",
    "colour_of",
    "colour_window",
    "merged_sketch",
    "observed",
    "read_windows",
    "records",
]

#: Gauges kept with each window (their Average and Maximum), for the rules that judge them.
GAUGES = (
    MetricName.CPU,
    MetricName.MEMORY,
    MetricName.HEALTH_CHECK_FAILURES,
    MetricName.HEALTHY_HOSTS,
    MetricName.DB_CONNECTIONS,
)
#: The latency statistics kept with each window (ms), whether or not a sketch is.
LATENCY_STATISTICS = (
    Statistic.AVERAGE,
    Statistic.P50,
    Statistic.P90,
    Statistic.P99,
    Statistic.MAXIMUM,
)


#: One period of one scope as the metric source answered it (the replay's window).
Window = ObservedWindow


def colour_of(target_group: str) -> str:
    """``web-green`` -> ``green`` (the colour a target group's name ends with)."""
    tail = target_group.rsplit("-", 1)[-1]
    return tail if tail in ("blue", "green") else target_group


def read_windows(
    metrics: Metrics,
    *,
    scope: str,
    start: datetime,
    end: datetime,
    period_s: int,
    gauges: Sequence[MetricName] = GAUGES,
) -> list[ObservedWindow]:
    """The periods of ``[start, end)`` for which the source had any data, oldest first.

    A failed query leaves its numbers out (a window is a record of what was seen, not a
    verdict); a period the source answered nothing for is not a window."""
    period_s = max(1, int(period_s))
    if end <= start:
        return []

    def query(metric: MetricName, statistic: Statistic) -> dict[datetime, tuple[float, int]]:
        m = metrics.query(
            MetricQuery(
                metric=metric,
                scope=scope,
                statistic=statistic,
                start=start,
                end=end,
                period_s=period_s,
            )
        )
        if not m.ok:
            return {}
        return {d.timestamp: (d.value, d.samples) for d in m.datapoints}

    rates = query(MetricName.ERROR_RATE, Statistic.AVERAGE)
    latency = {s: query(MetricName.RESPONSE_TIME, s) for s in LATENCY_STATISTICS}
    gauge = {g: {s: query(g, s) for s in (Statistic.AVERAGE, Statistic.MAXIMUM)} for g in gauges}
    times: set[datetime] = set(rates)
    for series in latency.values():
        times |= set(series)
    for by_stat in gauge.values():
        for series in by_stat.values():
            times |= set(series)
    sketches = isinstance(metrics, LatencySketches)
    out: list[ObservedWindow] = []
    for ts in sorted(times):
        w_end = min(end, ts + timedelta(seconds=period_s))
        rate, requests = rates.get(ts, (0.0, 0))
        errors = min(requests, round(rate * requests / 100.0))
        stats: dict[str, Any] = {}
        lat = {s.value: latency[s][ts][0] for s in LATENCY_STATISTICS if ts in latency[s]}
        if lat:
            stats["latency_ms"] = lat
        for g, by_stat in gauge.items():
            vals = {s.value: by_stat[s][ts][0] for s in by_stat if ts in by_stat[s]}
            if vals:
                stats[g.value] = vals
        sketch = None
        if sketches and requests:
            assert isinstance(metrics, LatencySketches)
            try:
                sketch = metrics.latency_sketch(scope, ts, w_end)
            except Exception:  # noqa: BLE001 - the distribution is extra; percentiles remain
                sketch = None
        out.append(
            ObservedWindow(
                start=ts,
                end=w_end,
                requests=int(requests),
                errors=int(errors),
                latency=sketch if sketch is not None and sketch.count else None,
                stats=stats,
            )
        )
    return out


def records(
    windows: Iterable[ObservedWindow],
    *,
    deployment_id: str,
    environment: str,
    service: str,
    scope: str,
    role: str,
    source: str,
) -> list[MeasurementRecord]:
    """Windows as store rows of one colour of one deployment."""
    return [
        MeasurementRecord(
            deployment_id=deployment_id,
            environment=environment,
            service=service,
            colour=colour_of(scope),
            role=role,
            scope=scope,
            source=source,
            start=w.start,
            end=w.end,
            requests=w.requests,
            errors=w.errors,
            latency=w.latency.to_json() if w.latency is not None else None,
            stats=dict(w.stats),
        )
        for w in windows
    ]


def observed(rows: Iterable[MeasurementRecord]) -> list[ObservedWindow]:
    """Stored rows as the replay's windows (oldest first)."""
    return [
        ObservedWindow(
            start=r.start,
            end=r.end,
            requests=r.requests,
            errors=r.errors,
            latency=LatencySketch.from_json(r.latency) if r.latency else None,
            stats=r.stats,
            source=r.source,
        )
        for r in sorted(rows, key=lambda r: r.start)
    ]


def merged_sketch(rows: Iterable[MeasurementRecord]) -> LatencySketch | None:
    """The latency distribution of stored windows together (``None`` if none kept one)."""
    merged: LatencySketch | None = None
    for w in observed(rows):
        if w.latency is None:
            continue
        if merged is None:
            merged = w.latency
        else:
            merged.merge(w.latency)
    return merged


def colour_window(rows: Sequence[MeasurementRecord]) -> ColourWindow:
    """Stored windows of one colour as the judge's input
    (:func:`deployops.domain.backtest.colour_window`)."""
    return backtest.colour_window(observed(rows))
