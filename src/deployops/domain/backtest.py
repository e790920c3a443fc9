"""Replaying stored measurements against a policy: what it would have decided, and when.

Pure: no I/O and no clock reads. A deployment's kept windows (:class:`ObservedWindow`, one
period of one colour) are replayed through the same pure functions the live observation uses:

- the rollback rules (:func:`deployops.domain.policy.decide`) judge the new colour's windows
  at the end of each window, as the observation would have at that moment; a rollback is
  correlated with the previous colour (its windows in the same periods when it served traffic
  then, else those before the switch moved onto the judged window), and a breach is not acted
  on before the rule's window has passed since the switch (:func:`replay_rules`);
- the statistical judge (:func:`deployops.domain.judge.judge`) compares the colours wherever
  both have windows of the same source and start (canary steps) (:func:`replay_judge`).

:func:`compare` then names the difference from what happened: ``same``, ``earlier`` or
``later`` rollback, ``would roll back a release that was fine`` (``false_rollback``) and
``miss``. Two approximations, said in the report: a scale-out a rule asks for is taken as
healthy at once (its grace then runs from that moment), and the decision times are those of
window ends (the live observation judged every sample interval within them).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from heapq import heapify, heappop, heappush
from typing import Any

from deployops.domain.judge import ColourWindow, Judgement, JudgePolicy, JudgeVerdict, judge
from deployops.domain.model import Datapoint, MetricName, Statistic
from deployops.domain.policy import (
    Action,
    Decision,
    RollbackPolicy,
    RollbackRule,
    ScaleOutProgress,
    decide,
)
from deployops.domain.rules import Rule, Series
from deployops.domain.rules import Verdict as RuleVerdict
from deployops.domain.sketch import LatencySketch

__all__ = [
    "MAX_JUDGED_SAMPLES",
    "OBSERVE_SOURCE",
    "Change",
    "JudgeReplay",
    "ObservedWindow",
    "Outcome",
    "RulesReplay",
    "colour_window",
    "compare",
    "judged_outcome",
    "period_start",
    "replay_judge",
    "replay_rules",
    "series_for",
]

#: A colour's latency samples handed to the judge are thinned to about this many
#: (proportionally per bucket): Mann-Whitney needs no more, and memory stays bounded.
MAX_JUDGED_SAMPLES = 20_000
#: The source of the windows the blue-green / rolling observation stores.
OBSERVE_SOURCE = "observe"


@dataclass(frozen=True, slots=True)
class ObservedWindow:
    """One stored window of one colour: ``[start, end)``, requests, errors, the latency
    distribution (ms) if kept, and the other numbers (``stats``: latency percentiles in ms
    under ``latency_ms``, gauges as ``{"Average": .., "Maximum": ..}`` by metric name)."""

    start: datetime
    end: datetime
    requests: int
    errors: int
    latency: LatencySketch | None = None
    stats: Mapping[str, Any] = field(default_factory=dict)
    source: str = OBSERVE_SOURCE


class Outcome(StrEnum):
    """What a replay would have done with a deployment."""

    ROLLBACK = "rollback"
    HOLD = "hold"  # a marginal comparison held the rollout (on_marginal: hold)
    NONE = "none"


class Change(StrEnum):
    """A replay beside what happened."""

    SAME = "same"
    EARLIER = "earlier"  # both rolled back; the replay sooner
    LATER = "later"  # both rolled back; the replay later
    FALSE_ROLLBACK = "false_rollback"  # would roll back a release that was fine
    MISS = "miss"  # was rolled back; the replay would not have


@dataclass(frozen=True, slots=True)
class RulesReplay:
    """The rules' replay: the first rollback (its time, rule and reason) or none, and the
    times of the other actions it would have taken (notices, scale-outs)."""

    rollback_at: datetime | None
    rule: str = ""
    reason: str = ""
    actions: tuple[tuple[datetime, str, str], ...] = ()  # (at, rule, action)
    judged_windows: int = 0


@dataclass(frozen=True, slots=True)
class JudgeReplay:
    """One comparison the judge would have made: the source (canary step), when (the end of
    its windows) and the judgement."""

    source: str
    at: datetime
    judgement: Judgement


def colour_window(windows: Sequence[ObservedWindow]) -> ColourWindow:
    """Windows of one colour as the judge's input: requests and errors summed, the latency
    distribution in seconds (each bucket's value repeated by its count, thinned to about
    :data:`MAX_JUDGED_SAMPLES`). Without a kept distribution there are no latency samples,
    and the latency metrics are "not enough samples"."""
    requests = sum(w.requests for w in windows)
    errors = sum(w.errors for w in windows)
    sketch = _merged([w.latency for w in windows])
    latencies: list[float] = []
    if sketch is not None and sketch.count:
        # Systematic thinning: every k-th request in value order, so each bucket keeps its
        # share and a rare tail is neither dropped nor over-weighted.
        scale = min(1.0, MAX_JUDGED_SAMPLES / sketch.count)
        seen = 0
        for value, count in sketch.items():
            n = math.floor((seen + count) * scale) - math.floor(seen * scale)
            seen += count
            latencies.extend([value / 1000.0] * n)
    return ColourWindow(requests, min(errors, requests), tuple(latencies))


# ---------------------------------------------------------------------------- series


def period_start(ts: datetime, period_s: int) -> datetime:
    """The start of the rule period (on the epoch grid the metric sources write on)."""
    t = ts.timestamp()
    return ts - timedelta(seconds=t - math.floor(t / period_s) * period_s)


def series_for(
    rule: Rule, windows: Sequence[ObservedWindow], *, shift: timedelta = timedelta(0)
) -> Series:
    """The rule's metric and statistic per rule period from stored windows (windows grouped
    into the period their start falls in), as the metric source would have answered."""
    p = max(1, rule.period_s)
    buckets: dict[datetime, list[ObservedWindow]] = {}
    for w in windows:
        buckets.setdefault(period_start(w.start, p), []).append(w)
    points: list[Datapoint] = []
    for start in sorted(buckets):
        point = _value(rule.metric, rule.statistic, buckets[start])
        if point is not None:
            value, samples = point
            points.append(Datapoint(timestamp=start + shift, value=value, samples=samples))
    return Series(datapoints=tuple(points))


def _value(
    metric: MetricName, statistic: Statistic, ws: Sequence[ObservedWindow]
) -> tuple[float, int] | None:
    requests = sum(w.requests for w in ws)
    errors = sum(w.errors for w in ws)
    if metric is MetricName.ERROR_RATE:
        return (100.0 * errors / requests if requests else 0.0), requests
    if metric is MetricName.REQUEST_COUNT:
        return float(requests), requests
    if metric is MetricName.HTTP_5XX:
        return float(errors), requests
    if metric is MetricName.RESPONSE_TIME:
        return _latency(statistic, ws, requests)
    values = [
        (w.stats.get(metric.value) or {}).get(
            "Maximum" if statistic is Statistic.MAXIMUM else "Average"
        )
        for w in ws
    ]
    found = [float(v) for v in values if v is not None]
    if not found:
        return None
    if statistic is Statistic.MAXIMUM:
        return max(found), len(found)
    if statistic is Statistic.MINIMUM:
        return min(found), len(found)
    if statistic is Statistic.SUM:
        return math.fsum(found), len(found)
    return math.fsum(found) / len(found), len(found)


def _latency(
    statistic: Statistic, ws: Sequence[ObservedWindow], requests: int
) -> tuple[float, int] | None:
    if statistic is Statistic.SAMPLE_COUNT:
        return float(requests), requests
    if not requests:
        return None  # no request, no latency (as the metric sources answer)
    quantiles = {Statistic.P50: 0.5, Statistic.P90: 0.9, Statistic.P99: 0.99}
    sketches = [w.latency for w in ws if w.requests]
    if statistic in quantiles and sketches and all(s is not None for s in sketches):
        merged = _merged(sketches)
        if merged is not None and merged.count:
            return merged.quantile(quantiles[statistic]), requests
    kept = [
        (w, (w.stats.get("latency_ms") or {}))
        for w in ws
        if w.requests and isinstance(w.stats.get("latency_ms"), dict)
    ]
    if statistic in (Statistic.AVERAGE, Statistic.SUM):
        pairs = [(w.requests, float(s["Average"])) for w, s in kept if "Average" in s]
        n = sum(k for k, _ in pairs)
        if not n:
            return None
        total = math.fsum(k * v for k, v in pairs)
        return (total if statistic is Statistic.SUM else total / n), requests
    name = "Maximum" if statistic is Statistic.MINIMUM else statistic.value
    found = [float(s[name]) for _, s in kept if name in s]
    if not found:
        return None
    # Several periods of a percentile: the largest (the conservative choice, as the rules).
    return (min(found) if statistic is Statistic.MINIMUM else max(found)), requests


def _merged(sketches: Sequence[LatencySketch | None]) -> LatencySketch | None:
    merged: LatencySketch | None = None
    for s in sketches:
        if s is None:
            continue
        if merged is None:
            merged = s.copy()
        else:
            merged.merge(s)
    return merged


# ---------------------------------------------------------------------------- replays


def replay_rules(
    policy: RollbackPolicy,
    new: Sequence[ObservedWindow],
    previous: Sequence[ObservedWindow] = (),
    *,
    since: datetime | None = None,
) -> RulesReplay:
    """The rules replayed over the new colour's windows, stopping at the first rollback.
    ``since`` is when the observation began (default: the first window's start).

    As the live observation: each rule is judged on the windows written by then, at the end
    of the newest one, while "how long since the switch" runs on the moment of judging. The
    moments are every window end, the moment each rule's window (and escalation) has passed
    since the switch, and the end of a scale-out's grace; none later than a period after the
    last window (the data ends there)."""
    new = sorted(new, key=lambda w: w.start)
    if not new:
        return RulesReplay(rollback_at=None)
    starts = [w.start for w in new]
    began = since or new[0].start
    switch = min(w.start for w in new)
    before = [w for w in previous if w.end <= switch]
    during = [w for w in previous if w.end > switch]
    last = max(w.end for w in new)
    horizon = last + timedelta(seconds=max((r.rule.period_s for r in policy.rules), default=60))
    moments: set[datetime] = {w.end for w in new}
    for rr in policy.rules:
        m, _ = rr.rule.m_of_n
        for wait in (
            max(m * rr.rule.period_s, rr.rule.breach_duration_s),
            rr.rule.escalate_after_s,
        ):
            if wait is not None:
                moments.add(began + timedelta(seconds=wait))
    scale: dict[str, ScaleOutProgress] = {}
    actions: list[tuple[datetime, str, str]] = []
    told: dict[str, str] = {}
    queue = sorted(moments)
    heapify(queue)
    done: set[datetime] = set()
    while queue:
        t = heappop(queue)
        if t in done or t > horizon:
            continue
        done.add(t)
        hi = bisect_right(starts, t)  # windows that started by t
        # The newest period written by t (windows follow each other: look at the last few).
        head = max((w.end for w in new[max(0, hi - 3) : hi] if w.end <= t), default=None)
        if head is None:
            continue  # nothing written yet
        at = min(t, head)
        elapsed = (t - began).total_seconds()
        for rr in policy.rules:
            # Only the rule's lookback matters (a watch over a day keeps thousands of windows).
            reach = at - timedelta(seconds=rr.rule.lookback_s + rr.rule.period_s)
            lo = bisect_left(starts, reach)
            seen = [w for w in new[lo:hi] if w.end <= t]
            series = series_for(rr.rule, seen)
            progress = _as_of(scale.get(rr.name), lag=t - at)
            decision = decide(rr, series, now=at, scale_out=progress)
            if decision.action is Action.ROLLBACK:
                base = _baseline(rr, during, before, at=at, elapsed=elapsed)
                if base is not None:
                    decision = decide(rr, series, now=at, baseline=base, scale_out=progress)
            decision = _not_before_window(rr.rule, decision, elapsed)
            if decision.action is Action.ROLLBACK:
                return RulesReplay(
                    rollback_at=t,
                    rule=rr.name,
                    reason=decision.reason,
                    actions=(*actions, (t, rr.name, "rollback")),
                    judged_windows=hi,
                )
            if decision.action is Action.SCALE_OUT and rr.name not in scale:
                # Taken as healthy at once: the grace runs from here.
                scale[rr.name] = ScaleOutProgress(started_at=t, healthy_at=t)
                heappush(queue, t + timedelta(seconds=rr.scale_out_grace_s))
            if decision.action is not Action.NONE and told.get(rr.name) != decision.action:
                actions.append((t, rr.name, decision.action.value))
            told[rr.name] = decision.action.value
    return RulesReplay(rollback_at=None, actions=tuple(actions), judged_windows=len(new))


def _as_of(progress: ScaleOutProgress | None, *, lag: timedelta) -> ScaleOutProgress | None:
    """A scale-out's times moved back by ``lag``: the rule is judged on the newest written
    period's end, ``lag`` before the moment of judging, while its grace runs in real time."""
    if progress is None or not lag:
        return progress
    healthy = progress.healthy_at - lag if progress.healthy_at is not None else None
    return replace(progress, started_at=progress.started_at - lag, healthy_at=healthy)


def _baseline(
    rr: RollbackRule,
    during: Sequence[ObservedWindow],
    before: Sequence[ObservedWindow],
    *,
    at: datetime,
    elapsed: float,
) -> Series | None:
    """The previous colour's series for the judged window: its own traffic then, else the
    time before the switch moved forward onto it (as the live observation does)."""
    rule = rr.rule
    lookback = timedelta(seconds=rule.lookback_s)
    current = series_for(rule, [w for w in during if at - lookback <= w.start < at])
    if _judgeable(rule, current):
        return current
    if not before:
        return None
    switch = max(w.end for w in before)
    moved = series_for(
        rule,
        [w for w in before if w.start >= switch - lookback],
        shift=timedelta(seconds=max(elapsed, 0.0)),
    )
    return moved if _judgeable(rule, moved) else None


def _judgeable(rule: Rule, series: Series) -> bool:
    points = series.datapoints
    if rule.min_samples:
        return any(d.samples >= rule.min_samples for d in points)
    return bool(points)


def _not_before_window(rule: Rule, decision: Decision, elapsed: float) -> Decision:
    """As the live observation: M breaching periods need M periods since the switch, and an
    escalation its whole duration before the breach is acted on."""
    if decision.verdict not in (RuleVerdict.BREACHING, RuleVerdict.WARNING):
        return decision
    m, _ = rule.m_of_n
    needed = max(float(m * rule.period_s), rule.breach_duration_s)
    if elapsed < needed:
        return replace(decision, action=Action.NONE)
    escalate = rule.escalate_after_s
    if decision.verdict is RuleVerdict.BREACHING and escalate is not None and elapsed < escalate:
        return replace(decision, action=Action.NOTIFY, verdict=RuleVerdict.WARNING)
    return decision


def replay_judge(
    policy: JudgePolicy,
    new: Sequence[ObservedWindow],
    previous: Sequence[ObservedWindow],
) -> list[JudgeReplay]:
    """The judge over every source (e.g. each canary step) where both colours have windows
    starting at the same times: one comparison per source, at the end of its windows. The
    blue-green observation (source ``observe``) is not compared: there the previous colour
    takes no traffic after the switch."""
    out: list[JudgeReplay] = []
    first: dict[str, datetime] = {}
    for w in new:
        if w.source != OBSERVE_SOURCE:
            first[w.source] = min(first.get(w.source, w.start), w.start)
    for source in sorted(first, key=first.__getitem__):
        mine = [w for w in new if w.source == source]
        theirs = [w for w in previous if w.source == source]
        starts = {w.start for w in mine} & {w.start for w in theirs}
        if not starts:
            continue
        a = [w for w in mine if w.start in starts]
        b = [w for w in theirs if w.start in starts]
        result = judge(colour_window(b), colour_window(a), policy)
        out.append(JudgeReplay(source=source, at=max(w.end for w in a), judgement=result))
    return out


def judged_outcome(
    replays: Sequence[JudgeReplay], *, on_marginal: str = "hold"
) -> tuple[Outcome, JudgeReplay | None]:
    """The first comparison that would have stopped the rollout: a Fail rolls back, a
    Marginal holds it (``on_marginal: hold``)."""
    for r in replays:
        if r.judgement.verdict is JudgeVerdict.FAIL:
            return Outcome.ROLLBACK, r
        if r.judgement.verdict is JudgeVerdict.MARGINAL and on_marginal == "hold":
            return Outcome.HOLD, r
    return Outcome.NONE, None


def compare(
    *,
    rolled_back_at: datetime | None,
    would_at: datetime | None,
    tolerance_s: float = 60.0,
) -> Change:
    """The replay (``would_at``: when it would have rolled back, ``None`` for never) beside
    what happened (``rolled_back_at``). Within ``tolerance_s`` (a period) is the same."""
    if rolled_back_at is None and would_at is None:
        return Change.SAME
    if rolled_back_at is None:
        return Change.FALSE_ROLLBACK
    if would_at is None:
        return Change.MISS
    delta = (would_at - rolled_back_at).total_seconds()
    if abs(delta) <= tolerance_s:
        return Change.SAME
    return Change.EARLIER if delta < 0 else Change.LATER
