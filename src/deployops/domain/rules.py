"""The rule engine: judge a metric's time series against a threshold rule (RB-1, MON-1).

Pure: no I/O and no clock reads. The series' datapoints carry their own timestamps and the
caller passes ``now``; the same rule runs on a real clock or a virtual one.

A rule says "statistic S of metric M, compared with a threshold, per period P, over the last
N periods (evaluation periods), M of which must breach (datapoints to alarm)". On top of the
CloudWatch model it adds what an automatic rollback needs:

- ``breach_duration_s``: the breach must also have lasted this long without a good period;
- ``min_samples``: a period summarising fewer observations (requests) is *quiet* and is not
  judged, so a service answering three requests is not rolled back for one error;
- ``escalate_after_s``: a breach first yields ``WARNING``; once it has lasted this long it
  becomes ``BREACHING`` (e.g. P99 > 1000 ms: warn after 3 min, act after 10 min);
- ``max_query_errors``: that many consecutive failed metric queries is its own verdict,
  ``QUERY_ERROR``, never mistaken for a breach or for health.

A latency period with requests in flight and none completed is not "no data": a request that
completes in a later period with a latency of ``L`` ms was in flight ``L`` ms before, so a
``TargetResponseTime`` period without a datapoint takes the value of the nearest newer period
whose latency reaches back into it (value ≥ k periods for the period k periods older). Such a
period is marked ``in_flight``; its requests are counted once, in the period they completed.

Every evaluation says what it judged on: ``judged on 1,240 requests in 3 periods`` or
``not judged: 2 requests, minimum 5``.

The window is anchored at ``now``: period ``i`` (0 = newest) holds the datapoints whose
timestamp lies in ``[now - (i+1)·P, now - i·P)``. Several datapoints in one period are combined
with the rule's statistic (sum for Sum/SampleCount, sample-weighted mean for Average, min for
Minimum, and max for Maximum and the percentiles, the conservative choice).

>>> from datetime import UTC, datetime, timedelta
>>> start = datetime(2026, 1, 1, tzinfo=UTC)
>>> rule = Rule(name="error-rate", metric=MetricName.ERROR_RATE, statistic=Statistic.AVERAGE,
...             comparison=Comparison.GT, threshold=5.0, evaluation_periods=5)
>>> series = Series.regular([1.0, 7.0, 8.0, 9.0, 6.0, 7.5], start=start)
>>> evaluate(rule, series, now=start + timedelta(minutes=6)).verdict
<Verdict.BREACHING: 'breaching'>
>>> evaluate(rule, series, now=start + timedelta(minutes=5)).verdict
<Verdict.OK: 'ok'>
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from enum import Enum, StrEnum
from typing import Any

from deployops.domain.model import Datapoint, Measurement, MetricName, Statistic

__all__ = [
    "PERCENT_METRICS",
    "Comparison",
    "Evaluation",
    "MissingData",
    "PeriodState",
    "PeriodValue",
    "Rule",
    "Series",
    "Verdict",
    "evaluate",
    "validate_rule",
]

#: Metrics measured in percent: a threshold outside 0..100 can never be crossed.
PERCENT_METRICS = frozenset(
    {
        MetricName.ERROR_RATE,
        MetricName.HEALTH_CHECK_FAILURES,
        MetricName.CPU,
        MetricName.MEMORY,
        MetricName.DB_CONNECTIONS,
    }
)


class Comparison(StrEnum):
    """How a value is compared with the threshold (CloudWatch ``ComparisonOperator``)."""

    GT = ">"  # GreaterThanThreshold
    GE = ">="  # GreaterThanOrEqualToThreshold
    LT = "<"  # LessThanThreshold
    LE = "<="  # LessThanOrEqualToThreshold

    def breaches(self, value: float, threshold: float) -> bool:
        if self is Comparison.GT:
            return value > threshold
        if self is Comparison.GE:
            return value >= threshold
        if self is Comparison.LT:
            return value < threshold
        return value <= threshold


class MissingData(StrEnum):
    """What a period without data counts as (CloudWatch ``TreatMissingData``)."""

    MISSING = "missing"  # not counted; no data at all -> insufficient data
    IGNORE = "ignore"  # not counted; where undecided, an alarm keeps its previous state
    BREACHING = "breaching"  # counts as a breach
    NOT_BREACHING = "notBreaching"  # counts as good


class Verdict(StrEnum):
    OK = "ok"
    WARNING = "warning"  # breached, not yet for the escalation duration
    BREACHING = "breaching"
    INSUFFICIENT_DATA = "insufficient_data"
    QUERY_ERROR = "query_error"  # too many consecutive failed queries: not judged


class PeriodState(StrEnum):
    BREACH = "breach"
    OK = "ok"
    MISSING = "missing"  # no datapoint, and the missing-data treatment does not fill it
    QUIET = "quiet"  # fewer samples than ``min_samples``: never judged


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """A threshold rule. Every number is configurable; ``validate_rule`` checks them.

    ``datapoints_to_alarm`` defaults to ``evaluation_periods`` ("for the whole window").
    """

    name: str
    metric: MetricName
    statistic: Statistic
    comparison: Comparison
    threshold: float
    period_s: int = 60
    evaluation_periods: int = 1
    datapoints_to_alarm: int | None = None
    breach_duration_s: float = 0.0
    escalate_after_s: float | None = None
    missing_data: MissingData = MissingData.MISSING
    min_samples: int = 0
    max_query_errors: int = 3

    @property
    def m_of_n(self) -> tuple[int, int]:
        """(datapoints to alarm, evaluation periods)."""
        n = self.evaluation_periods
        return (self.datapoints_to_alarm if self.datapoints_to_alarm is not None else n), n

    @property
    def window_s(self) -> float:
        """The evaluation window: evaluation periods × period."""
        return float(self.evaluation_periods * self.period_s)

    @property
    def lookback_periods(self) -> int:
        """How many periods the engine looks at (the window, or longer for durations)."""
        p = max(self.period_s, 1)
        longest = max(self.breach_duration_s, self.escalate_after_s or 0.0)
        return max(self.evaluation_periods, math.ceil(longest / p))

    @property
    def lookback_s(self) -> float:
        """How far back a caller must query the metric for this rule."""
        return float(self.lookback_periods * self.period_s)

    def describe(self) -> str:
        m, n = self.m_of_n
        text = (
            f"{self.metric.value} {self.statistic.value} {self.comparison.value} {self.threshold:g}"
        )
        text += f" in {m} of {n} periods of {self.period_s}s"
        if self.breach_duration_s:
            text += f" for {self.breach_duration_s:g}s"
        if self.escalate_after_s is not None:
            text += f", escalating after {self.escalate_after_s:g}s"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (enums as their values)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Series:
    """The datapoints of one metric for one scope, plus the trailing failed queries.

    ``consecutive_errors`` counts the most recent queries that failed (a failed query is a value,
    see :class:`~deployops.domain.model.Measurement`); ``last_error`` is the latest message.
    """

    datapoints: tuple[Datapoint, ...] = ()
    consecutive_errors: int = 0
    last_error: str = ""

    @classmethod
    def regular(
        cls,
        values: Iterable[float | None],
        *,
        start: datetime,
        period_s: int = 60,
        samples: int = 0,
    ) -> Series:
        """One datapoint per period from ``start``; ``None`` leaves a gap.

        >>> from datetime import UTC, datetime
        >>> s = Series.regular([1.0, None, 3.0], start=datetime(2026, 1, 1, tzinfo=UTC))
        >>> [d.value for d in s.datapoints]
        [1.0, 3.0]
        """
        points = tuple(
            Datapoint(timestamp=start + timedelta(seconds=i * period_s), value=v, samples=samples)
            for i, v in enumerate(values)
            if v is not None
        )
        return cls(datapoints=points)

    @classmethod
    def from_measurements(cls, measurements: Sequence[Measurement]) -> Series:
        """Merge successive query results (oldest first): datapoints of the successful ones (a
        later result wins for the same timestamp) and the count of trailing failures."""
        by_time: dict[datetime, Datapoint] = {}
        errors = 0
        last_error = ""
        for m in measurements:
            if m.ok:
                errors = 0
                for d in m.datapoints:
                    by_time[d.timestamp] = d
            else:
                errors += 1
                last_error = m.error
        return cls(
            datapoints=tuple(by_time[t] for t in sorted(by_time)),
            consecutive_errors=errors,
            last_error=last_error,
        )


@dataclass(frozen=True, slots=True)
class PeriodValue:
    """One period of the evaluation: its start, combined value, samples and state."""

    start: datetime
    value: float | None
    samples: int
    state: PeriodState
    #: No request completed here, but requests completing later were in flight: the value
    #: (and ``samples``, for the minimum) are those of the period they completed in.
    in_flight: bool = False

    @property
    def observed(self) -> int:
        """Observations that belong to this period (0 for an in-flight one: counted where
        its requests completed)."""
        return 0 if self.in_flight else self.samples

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "value": self.value,
            "samples": self.samples,
            "state": self.state.value,
            "in_flight": self.in_flight,
        }


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The outcome of one rule on one series at ``at``.

    ``periods`` runs oldest to newest over the lookback; the last ``evaluation_periods`` of them
    are the window. ``retain`` is set where ``MissingData.IGNORE`` leaves the decision to the
    previous state. ``evidence()`` is the JSON-serialisable record stored with a decision.
    """

    rule: Rule
    verdict: Verdict
    reason: str
    at: datetime
    periods: tuple[PeriodValue, ...] = ()
    datapoints: int = 0  # judged periods in the window
    breaches: int = 0  # breaching periods in the window
    breach_duration_s: float = 0.0  # as far back as the lookback reaches
    query_errors: int = 0
    retain: bool = False

    @property
    def window(self) -> tuple[PeriodValue, ...]:
        """The evaluation window's periods, oldest first."""
        n = self.rule.evaluation_periods
        return self.periods[-n:] if n and self.periods else ()

    @property
    def judged_samples(self) -> int:
        """Observations (requests for request metrics) in the window's judged periods."""
        return sum(
            p.observed for p in self.window if p.state in (PeriodState.BREACH, PeriodState.OK)
        )

    @property
    def judged_periods(self) -> int:
        """Judged periods of the window that had data of their own or requests in flight
        (periods filled by the missing-data treatment are not evidence)."""
        return sum(
            1
            for p in self.window
            if p.state in (PeriodState.BREACH, PeriodState.OK) and p.value is not None
        )

    @property
    def judged(self) -> bool:
        """Whether the verdict rests on data (OK, warning and breaching on real periods)."""
        if self.verdict in (Verdict.INSUFFICIENT_DATA, Verdict.QUERY_ERROR):
            return False
        return self.judged_periods > 0 or self.rule.missing_data is MissingData.BREACHING

    def basis(self) -> str:
        """What the verdict was judged on, for a user: ``judged on 1,240 requests in 3
        periods`` or ``not judged: 2 requests, minimum 5``."""
        return _basis(self)

    def evidence(self) -> dict[str, Any]:
        return {
            "rule": self.rule.to_dict(),
            "condition": self.rule.describe(),
            "verdict": self.verdict.value,
            "reason": self.reason,
            "at": self.at.isoformat(),
            "periods": [p.to_dict() for p in self.periods],
            "datapoints": self.datapoints,
            "breaches": self.breaches,
            "breach_duration_s": self.breach_duration_s,
            "query_errors": self.query_errors,
            "retain": self.retain,
            "judged": self.judged,
            "judged_samples": self.judged_samples,
            "judged_periods": self.judged_periods,
            "basis": self.basis(),
        }


def evaluate(rule: Rule, series: Series | Sequence[Datapoint], *, now: datetime) -> Evaluation:
    """Judge ``series`` against ``rule`` at ``now``. See the module docstring for the model."""
    if not isinstance(series, Series):
        series = Series(datapoints=tuple(series))
    if series.consecutive_errors >= rule.max_query_errors:
        return Evaluation(
            rule=rule,
            verdict=Verdict.QUERY_ERROR,
            reason=(
                f"{series.consecutive_errors} consecutive metric queries failed "
                f"(limit {rule.max_query_errors}): {series.last_error or 'no detail'}"
            ),
            at=now,
            query_errors=series.consecutive_errors,
        )

    periods = _periods(rule, series.datapoints, now)  # newest first
    m, n = rule.m_of_n
    window = periods[:n]
    judged = [p for p in window if p.state in (PeriodState.BREACH, PeriodState.OK)]
    breaches = sum(1 for p in judged if p.state is PeriodState.BREACH)
    quiet = sum(1 for p in window if p.state is PeriodState.QUIET)
    duration = _breach_duration(periods, now)
    ignore = rule.missing_data is MissingData.IGNORE

    def result(verdict: Verdict, reason: str, *, retain: bool = False) -> Evaluation:
        return Evaluation(
            rule=rule,
            verdict=verdict,
            reason=reason,
            at=now,
            periods=tuple(reversed(periods)),
            datapoints=len(judged),
            breaches=breaches,
            breach_duration_s=duration,
            query_errors=series.consecutive_errors,
            retain=retain,
        )

    unit = _unit(rule)
    if not judged:
        if quiet:
            seen = sum(p.samples for p in window)
            why = (
                f"not judged, too little traffic: {_count(seen, unit)} in "
                f"{_count(n, 'period')} of "
                f"{rule.period_s}s, minimum {rule.min_samples} per period"
            )
        else:
            why = f"not judged: no data in the last {_count(n, 'period')} of {rule.period_s}s"
        return result(Verdict.INSUFFICIENT_DATA, why, retain=ignore)

    if len(judged) >= m:
        hit = breaches >= m
    elif breaches < len(judged):
        hit = False  # a good period among too few: nothing says breach
    elif rule.missing_data is MissingData.MISSING and not quiet:
        hit = True  # CloudWatch: with fewer datapoints than M, all present breaching alarms
    else:
        return result(
            Verdict.INSUFFICIENT_DATA,
            f"not judged: only {len(judged)} judged periods, all breaching; {m} needed",
            retain=ignore,
        )

    flight = _in_flight_note(window)
    if not hit:
        return result(
            Verdict.OK,
            f"{breaches} of {len(judged)} periods breach; {m} of {n} needed to act{flight}",
        )
    if duration < rule.breach_duration_s:
        return result(
            Verdict.OK,
            f"breaching for {duration:g}s, not yet the required {rule.breach_duration_s:g}s",
        )
    condition = f"{rule.metric.value} {rule.comparison.value} {rule.threshold:g}"
    if rule.escalate_after_s is not None and duration < rule.escalate_after_s:
        return result(
            Verdict.WARNING,
            f"{condition} in {breaches} of {n} periods, for {duration:g}s; "
            f"escalates at {rule.escalate_after_s:g}s{flight}",
        )
    return result(
        Verdict.BREACHING, f"{condition} in {breaches} of {n} periods, for {duration:g}s{flight}"
    )


def _periods(rule: Rule, datapoints: Sequence[Datapoint], now: datetime) -> list[PeriodValue]:
    """The lookback periods, newest first, with the missing-data treatment applied."""
    p = rule.period_s
    count = rule.lookback_periods
    buckets: list[list[Datapoint]] = [[] for _ in range(count)]
    for d in datapoints:
        age = (now - d.timestamp).total_seconds()
        if age <= 0:
            continue  # at or after now: a period that has not started being observed
        index = math.ceil(age / p) - 1
        if index < count:
            buckets[index].append(d)
    carried = _in_flight(rule, buckets)
    out: list[PeriodValue] = []
    for i, bucket in enumerate(buckets):
        start = now - timedelta(seconds=(i + 1) * p)
        if not bucket and i in carried:
            value, samples = carried[i]
            out.append(
                PeriodValue(
                    start=start,
                    value=value,
                    samples=samples,
                    state=_state(rule, value, samples),
                    in_flight=True,
                )
            )
            continue
        if not bucket:
            state = {
                MissingData.BREACHING: PeriodState.BREACH,
                MissingData.NOT_BREACHING: PeriodState.OK,
            }.get(rule.missing_data, PeriodState.MISSING)
            out.append(PeriodValue(start=start, value=None, samples=0, state=state))
            continue
        value = _combine(rule.statistic, bucket)
        samples = sum(d.samples for d in bucket)
        out.append(
            PeriodValue(
                start=start, value=value, samples=samples, state=_state(rule, value, samples)
            )
        )
    return out


def _state(rule: Rule, value: float, samples: int) -> PeriodState:
    if rule.min_samples and samples < rule.min_samples:
        return PeriodState.QUIET
    if rule.comparison.breaches(value, rule.threshold):
        return PeriodState.BREACH
    return PeriodState.OK


#: Latency statistics whose value bounds how long a period's requests were in flight.
_IN_FLIGHT_STATISTICS = frozenset(
    {
        Statistic.AVERAGE,
        Statistic.MINIMUM,
        Statistic.MAXIMUM,
        Statistic.P50,
        Statistic.P90,
        Statistic.P99,
    }
)


def _in_flight(rule: Rule, buckets: Sequence[Sequence[Datapoint]]) -> dict[int, tuple[float, int]]:
    """Latency attribution: the periods (index, newest first = 0) without a completed request
    that requests completing later were in flight in, with the value and samples of the
    nearest such later period.

    A request completing in period ``j`` (at ``t`` in ``[s_j, s_j + P)``) with latency ``L`` was
    in flight from ``t - L``; if ``L ≥ k·P`` that is before ``s_j - (k-1)·P``, inside period
    ``j + k`` (k periods older). For a statistic that is a latency of real requests (a
    percentile, the mean, the extremes), a value ``≥ k·P`` says such requests existed.
    """
    if rule.metric is not MetricName.RESPONSE_TIME or rule.statistic not in _IN_FLIGHT_STATISTICS:
        return {}
    period_ms = 1000.0 * max(rule.period_s, 1)
    combined: dict[int, tuple[float, int]] = {
        i: (_combine(rule.statistic, b), sum(d.samples for d in b))
        for i, b in enumerate(buckets)
        if b
    }
    out: dict[int, tuple[float, int]] = {}
    for i, bucket in enumerate(buckets):
        if bucket:
            continue
        for j in range(i - 1, -1, -1):  # the nearest newer period first
            if j in combined and combined[j][0] >= (i - j) * period_ms:
                out[i] = combined[j]
                break
    return out


_PER_REQUEST = frozenset(
    {
        MetricName.ERROR_RATE,
        MetricName.RESPONSE_TIME,
        MetricName.REQUEST_COUNT,
        MetricName.HTTP_5XX,
    }
)


def _unit(rule: Rule) -> str:
    return "request" if rule.metric in _PER_REQUEST else "sample"


def _count(n: int, unit: str) -> str:
    return f"{n:,} {unit}{'' if n == 1 else 's'}"


def _in_flight_note(window: Sequence[PeriodValue]) -> str:
    """``; 1 period with requests in flight and none completed`` (window newest first)."""
    flying = [i for i, p in enumerate(window) if p.in_flight]
    if not flying:
        return ""
    n = len(window)
    which = ", ".join(str(n - i) for i in reversed(flying))
    return (
        f"; period {which} of {n} had requests in flight and none completed "
        "(judged on the requests that completed later)"
    )


def _basis(ev: Evaluation) -> str:
    rule = ev.rule
    unit = _unit(rule)
    if ev.verdict is Verdict.QUERY_ERROR:
        return f"not judged: {ev.query_errors} metric queries failed in a row"
    window = ev.window
    if ev.verdict is Verdict.INSUFFICIENT_DATA or not ev.judged:
        seen = sum(p.observed for p in window)
        if rule.min_samples and seen:
            return (
                f"not judged: {_count(seen, unit)} in {_count(len(window), 'period')}, "
                f"minimum {rule.min_samples} per period"
            )
        if seen:
            return f"not judged: {_count(seen, unit)} in {_count(len(window), 'period')}"
        return f"not judged: no data in {_count(len(window), 'period')} of {rule.period_s}s"
    text = f"judged on {_count(ev.judged_samples, unit)} in {_count(ev.judged_periods, 'period')}"
    filled = sum(
        1 for p in window if p.value is None and p.state in (PeriodState.BREACH, PeriodState.OK)
    )
    if filled:
        as_what = "good" if rule.missing_data is MissingData.NOT_BREACHING else "breaching"
        text += f" ({_count(filled, 'period')} without data counted as {as_what})"
    return text


def _combine(statistic: Statistic, points: Sequence[Datapoint]) -> float:
    values = [d.value for d in points]
    if len(values) == 1:
        return values[0]
    if statistic in (Statistic.SUM, Statistic.SAMPLE_COUNT):
        return math.fsum(values)
    if statistic is Statistic.MINIMUM:
        return min(values)
    if statistic is Statistic.AVERAGE:
        weights = [d.samples for d in points]
        if all(w > 0 for w in weights):
            return math.fsum(d.value * d.samples for d in points) / sum(weights)
        return math.fsum(values) / len(values)
    # Maximum, and percentiles: a percentile of merged periods cannot be recomputed from the
    # per-period percentiles; the largest is the conservative bound for a "too slow" rule.
    return max(values)


def _breach_duration(periods: Sequence[PeriodValue], now: datetime) -> float:
    """How long the breach has lasted: back to the oldest breaching period with no good period
    in between (missing and quiet periods neither break nor extend the run)."""
    oldest: datetime | None = None
    for p in periods:  # newest first
        if p.state is PeriodState.OK:
            break
        if p.state is PeriodState.BREACH:
            oldest = p.start
    if oldest is None:
        return 0.0
    return (now - oldest).total_seconds()


def validate_rule(rule: Rule, path: str = "") -> list[tuple[str, str]]:
    """Impossible windows and thresholds as ``(path, message)`` pairs (empty: valid).

    The config layer turns these into ``ConfigIssue`` (the domain imports only the stdlib).

    >>> bad = Rule(name="cpu", metric=MetricName.CPU, statistic=Statistic.AVERAGE,
    ...            comparison=Comparison.GT, threshold=120.0)
    >>> validate_rule(bad, "rules.cpu")
    [('rules.cpu.threshold', 'CPUUtilization is a percentage: > 120 can never be true; use a threshold between 0 and 100')]
    """  # noqa: E501
    issues: list[tuple[str, str]] = []

    def add(field: str, message: str) -> None:
        issues.append((f"{path}.{field}" if path else field, message))

    if not rule.name.strip():
        add("name", "a rule needs a name, e.g. error-rate")
    if not math.isfinite(rule.threshold):
        add("threshold", "must be a finite number")
    elif rule.metric in PERCENT_METRICS and (
        rule.threshold < 0
        or rule.threshold > 100
        or (rule.comparison is Comparison.GT and rule.threshold >= 100)
        or (rule.comparison is Comparison.LT and rule.threshold <= 0)
    ):
        add(
            "threshold",
            f"{rule.metric.value} is a percentage: {rule.comparison.value} {rule.threshold:g} "
            "can never be true; use a threshold between 0 and 100",
        )
    elif rule.threshold < 0 or (rule.comparison is Comparison.LT and rule.threshold == 0):
        add(
            "threshold",
            f"{rule.metric.value} is never negative: {rule.comparison.value} "
            f"{rule.threshold:g} is always or never true; use a threshold of 0 or more",
        )
    if rule.period_s <= 0:
        add("period_s", "must be more than 0 seconds, e.g. 60")
    if rule.evaluation_periods < 1:
        add("evaluation_periods", "must be at least 1")
    if rule.datapoints_to_alarm is not None and not (
        1 <= rule.datapoints_to_alarm <= max(rule.evaluation_periods, 1)
    ):
        add(
            "datapoints_to_alarm",
            f"must be between 1 and evaluation_periods ({rule.evaluation_periods}): "
            "M of N periods cannot exceed N",
        )
    if rule.breach_duration_s < 0:
        add("breach_duration_s", "must be 0 or more seconds")
    if rule.escalate_after_s is not None:
        if rule.escalate_after_s <= rule.window_s:
            add(
                "escalate_after_s",
                f"must be longer than the window ({rule.window_s:g}s = evaluation_periods × "
                "period_s), or the warning could never come first; lengthen it or remove it",
            )
        elif rule.breach_duration_s > rule.escalate_after_s:
            add(
                "breach_duration_s",
                f"longer than escalate_after_s ({rule.escalate_after_s:g}s): the warning could "
                "never come first; shorten breach_duration_s",
            )
    if rule.min_samples < 0:
        add("min_samples", "must be 0 (judge every period) or more")
    if rule.max_query_errors < 1:
        add("max_query_errors", "must be at least 1")
    return issues


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    return value
