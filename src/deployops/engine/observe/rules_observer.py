"""The automatic-rollback observer: the RB-1 rules, correlated with the baseline (RB-2).

Every sample interval after the switch, :class:`RulesObserver` queries each rule's metric for
the new target group, judges it with the pure rule engine (:func:`deployops.domain.policy.decide`)
and answers the deployment engine with one :class:`~deployops.engine.observe.Verdict`: the most
urgent decision, with its evidence (series, thresholds, baseline, verdict).

Before a rollback it correlates. The baseline is the previous version: the previous colour's
target group while it still has traffic of its own (e.g. the test listener), else its series
from before the switch, moved forward in time onto the same window. If the baseline shows the
same breach, the release is not blamed: the decision is "notify: not caused by this release".

A metric source that fails is never read as health nor as a breach: failed queries reuse the
last good data until ``max_query_errors`` in a row, which is its own verdict (not judged, and
stakeholders are told). A source that answers with no data at all for the shortest rule window
is reported as silent ("metrics-silent"); only a rule configured with
``missing_data: breaching`` turns silence into a breach.

>>> observer = RulesObserver(compute=compute, metrics=metrics)  # doctest: +SKIP
>>> observer.evaluate(step, since=switched_at, now=clock.now()).action  # doctest: +SKIP
<Action.NONE: 'none'>
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from deployops.config.rollback import InsufficientDataSettings, RollbackSettings
from deployops.domain.model import Datapoint, Measurement, MetricQuery
from deployops.domain.plan import Observe
from deployops.domain.policy import (
    DEFAULT_ROLLBACK_POLICY,
    Action,
    Decision,
    RollbackPolicy,
    RollbackRule,
    RuleAction,
    ScaleOutProgress,
    decide,
    most_urgent,
)
from deployops.domain.rules import MissingData, PeriodState, Rule, Series
from deployops.domain.rules import Verdict as RuleVerdict
from deployops.engine.observe.health import Verdict
from deployops.ports import Compute, Metrics

__all__ = ["RulesObserver"]


@dataclass
class _RuleState:
    """What the observer remembers of one rule during one observation."""

    last_good: tuple[Datapoint, ...] = ()
    errors: int = 0
    last_error: str = ""
    scale: ScaleOutProgress | None = None
    scale_desired: int = 0
    judged: bool = False  # judged on data at least once in this observation
    lost: bool = False  # was judged, then its data stopped arriving
    judged_samples: int = 0  # the most observations one judgement rested on
    basis: str = ""  # what the latest judgement rested on


class RulesObserver:
    """Judges the new version against a rollback policy every sample interval (RB-1, RB-2).

    ``max_replicas`` and ``scale_out_step`` bound the scale-outs the engine makes for the
    ``scale_out`` rules; ``scale_out_cooldown_s`` keeps a plain ``scale_out`` rule (CPU) from
    asking again before the last scale-out had time to help (IAC-5: 300 s).
    """

    def __init__(
        self,
        *,
        compute: Compute,
        metrics: Metrics,
        policy: RollbackPolicy = DEFAULT_ROLLBACK_POLICY,
        max_replicas: int = 10,
        scale_out_step: int = 2,
        scale_out_cooldown_s: float = 300.0,
        insufficient_data: InsufficientDataSettings | None = None,
    ) -> None:
        self.insufficient_data = insufficient_data or InsufficientDataSettings()
        self._compute = compute
        self._metrics = metrics
        self.policy = policy
        self.max_replicas = max_replicas
        self.scale_out_step = scale_out_step
        self.scale_out_cooldown_s = scale_out_cooldown_s
        self._states: dict[str, _RuleState] = {}
        self._watching: tuple[str, datetime] | None = None

    @classmethod
    def from_settings(
        cls, *, compute: Compute, metrics: Metrics, settings: RollbackSettings
    ) -> RulesObserver:
        return cls(
            compute=compute,
            metrics=metrics,
            policy=settings.policy(),
            max_replicas=settings.max_replicas,
            scale_out_step=settings.scale_out_step,
            scale_out_cooldown_s=settings.scale_out_cooldown,
            insufficient_data=settings.insufficient_data,
        )

    # ------------------------------------------------------------------ judgement
    def judgement(self) -> dict[str, dict[str, Any]]:
        """Per rule of this observation: whether it was judged on data, on how much, and
        what its latest evaluation rested on."""
        return {
            rr.name: {
                "judged": self._states.get(rr.name, _RuleState()).judged,
                "judged_samples": self._states.get(rr.name, _RuleState()).judged_samples,
                "basis": self._states.get(rr.name, _RuleState()).basis or "not evaluated",
                "min_samples": rr.rule.min_samples,
                "period_s": rr.rule.period_s,
                "lookback_s": rr.rule.lookback_s,
            }
            for rr in self.policy.rules
        }

    # ------------------------------------------------------------------ ScaleAware
    def scale_limits(self) -> tuple[int, int]:
        return self.max_replicas, self.scale_out_step

    def scaled_out(
        self, rule: str, *, at: datetime, desired: int, no_room: bool, detail: str
    ) -> None:
        """The engine scaled out (or found no room) for ``rule``."""
        _ = detail
        state = self._states.setdefault(rule, _RuleState())
        state.scale = ScaleOutProgress(started_at=at, no_room=no_room)
        state.scale_desired = desired

    # ------------------------------------------------------------------ Observer
    def evaluate(self, step: Observe, *, since: datetime, now: datetime) -> Verdict:
        if self._watching != (step.target_group, since):
            self._watching = (step.target_group, since)
            self._states = {}
        decisions: list[Decision] = []
        notes: dict[str, dict[str, Any]] = {}
        hold = 0.0
        any_data = False
        for rr in self.policy.rules:
            state = self._states.setdefault(rr.name, _RuleState())
            series = self._series(rr.rule, state, step.target_group, since, now)
            any_data = any_data or bool(series.datapoints)
            self._update_scale(state, step, now)
            at = now if state.errors else _settled(rr.rule, series, since, now)
            decision = decide(rr, series, now=at, scale_out=state.scale)
            if decision.action is Action.SCALE_OUT and self._no_room(step):
                # Asking for replicas that cannot come would only delay what follows.
                state.scale = ScaleOutProgress(started_at=now, no_room=True)
                decision = decide(rr, series, now=at, scale_out=state.scale)
            baseline_note: dict[str, Any] = {}
            if decision.action is Action.ROLLBACK:
                base, baseline_note = self._baseline(rr.rule, step, since, now)
                if base is not None:
                    decision = decide(rr, series, now=at, baseline=base, scale_out=state.scale)
            decision = _not_before_window(rr.rule, decision, (now - since).total_seconds())
            decision = self._cooldown(rr, state, decision, now)
            if (
                decision.verdict is RuleVerdict.OK
                and rr.rule.missing_data is not MissingData.BREACHING
                and not _in_window(rr.rule, series, at)
            ):
                # NOT_BREACHING fills silence with "good" periods: say what it really is.
                decision = replace(
                    decision,
                    verdict=RuleVerdict.INSUFFICIENT_DATA,
                    reason=f"not judged: no data in the last {rr.rule.window_s:g}s",
                )
            decisions.append(decision)
            ev = decision.evaluation
            unjudged = (RuleVerdict.INSUFFICIENT_DATA, RuleVerdict.QUERY_ERROR)
            judged = ev.judged and decision.verdict not in unjudged
            basis = ev.basis() if judged == ev.judged else decision.reason
            silent = not any(p.value is not None for p in ev.window)
            if judged:
                state.judged, state.lost = True, False
                state.judged_samples = max(state.judged_samples, ev.judged_samples)
            elif state.judged and silent and decision.verdict in unjudged:
                # Its data stopped arriving (a collector down, a metric source gone): what it
                # was judged on before is no evidence for the rest of the watch. Judged again
                # only when data comes back; else it ends as not judged, never as a pass.
                state.judged, state.lost = False, True
            if state.lost and not judged:
                basis = f"{basis} (data stopped arriving after it was judged)"
            state.basis = basis
            newest = next((p for p in reversed(ev.window) if p.value is not None), None)
            notes[rr.name] = {
                "verdict": decision.verdict.value,
                "action": decision.action.value,
                "reason": decision.reason,
                "scope": step.target_group,
                "judged": judged,
                "basis": basis,
                "value": newest.value if newest is not None else None,
                "threshold": rr.rule.threshold,
                "comparison": rr.rule.comparison.value,
                "metric": rr.rule.metric.value,
                **({"baseline": baseline_note} if baseline_note else {}),
            }
            hold = max(hold, _hold(rr, decision, state, now))

        urgent = most_urgent(decisions)
        waited = (now - since).total_seconds()
        silence_after = min((r.rule.window_s for r in self.policy.rules), default=60.0)
        if urgent is None and not any_data and waited >= silence_after:
            return Verdict(
                action=Action.NOTIFY,
                rule="metrics-silent",
                reason=(
                    f"no datapoint for {step.target_group} from the metric source "
                    f"({self._metrics.name}) in {waited:g}s since the switch: the rules are "
                    "not judged (neither healthy nor breaching)"
                ),
                evidence={"scope": step.target_group, "since": since.isoformat(), "rules": notes},
                hold_s=0.0,
            )
        if urgent is None:
            return Verdict(
                action=Action.NONE,
                reason=_summary(decisions),
                evidence={"rules": notes},
                hold_s=hold,
            )
        evidence = urgent.evidence()
        evidence["scope"] = step.target_group
        evidence["baseline_source"] = notes[urgent.rule].get("baseline", {})
        evidence["rules"] = notes
        if urgent.action is Action.SCALE_OUT:
            evidence["scale_out"] = {
                "service": step.service,
                "max_replicas": self.max_replicas,
                "step": self.scale_out_step,
            }
        return Verdict(
            action=urgent.action,
            rule=urgent.rule,
            reason=urgent.reason,
            evidence=evidence,
            hold_s=hold,
        )

    # ------------------------------------------------------------------ helpers
    def _query(self, rule: Rule, scope: str, start: datetime, end: datetime) -> Measurement:
        return self._metrics.query(
            MetricQuery(
                metric=rule.metric,
                scope=scope,
                statistic=rule.statistic,
                start=start,
                end=end,
                period_s=rule.period_s,
            )
        )

    def _series(
        self, rule: Rule, state: _RuleState, scope: str, since: datetime, now: datetime
    ) -> Series:
        """The new version's series since the switch, in the rule's periods counted from
        :func:`_period_origin` (each period then falls in exactly one of the rule engine's
        periods, and ends when the collector writes its last sample)."""
        p = rule.period_s
        origin = _period_origin(rule, since)
        elapsed = (now - origin).total_seconds()
        skip = max(0, math.floor((elapsed - rule.lookback_s) / p) - 1)
        start = origin + timedelta(seconds=skip * p)
        if now <= start:
            return Series(datapoints=state.last_good)
        m = self._query(rule, scope, start, now)
        if m.ok:
            state.errors, state.last_error = 0, ""
            state.last_good = tuple(d for d in m.datapoints if d.timestamp >= origin)
        else:
            state.errors += 1
            state.last_error = m.error
        return Series(
            datapoints=state.last_good,
            consecutive_errors=state.errors,
            last_error=state.last_error,
        )

    def _baseline(
        self, rule: Rule, step: Observe, since: datetime, now: datetime
    ) -> tuple[Series | None, dict[str, Any]]:
        """The previous version's series for the same window (RB-2)."""
        scope = step.baseline_target_group or step.target_group
        elapsed = (now - since).total_seconds()
        if step.baseline_target_group:
            current = self._query(rule, scope, now - timedelta(seconds=rule.lookback_s), now)
            if current.ok and _judgeable(rule, current.datapoints):
                return Series(datapoints=current.datapoints), {
                    "scope": scope,
                    "source": "current",
                }
        # Before the switch: the same length of time, moved onto the window judged now.
        start = since - timedelta(seconds=rule.lookback_s)
        before = self._query(rule, scope, start, since)
        note: dict[str, Any] = {
            "scope": scope,
            "source": "before the switch",
            "from": start.isoformat(),
            "to": since.isoformat(),
        }
        if not before.ok:
            return None, {**note, "error": before.error}
        shift = timedelta(seconds=max(elapsed, 0.0))
        moved = tuple(replace(d, timestamp=d.timestamp + shift) for d in before.datapoints)
        if not _judgeable(rule, moved):
            return None, {**note, "error": "no judgeable data before the switch"}
        return Series(datapoints=moved), note

    def _no_room(self, step: Observe) -> bool:
        svc = self._compute.describe_service(step.service)
        return svc is not None and svc.desired >= self.max_replicas

    def _update_scale(self, state: _RuleState, step: Observe, now: datetime) -> None:
        sc = state.scale
        if sc is None or sc.no_room or sc.healthy_at is not None:
            return
        svc = self._compute.describe_service(step.service)
        if svc is not None and svc.healthy >= state.scale_desired:
            state.scale = replace(sc, healthy_at=now)

    def _cooldown(
        self, rr: RollbackRule, state: _RuleState, decision: Decision, now: datetime
    ) -> Decision:
        """A plain scale-out rule asks again only after the last one is healthy and cooled
        down (IAC-5); until then its breach is reported, not acted on."""
        sc = state.scale
        if rr.action is not RuleAction.SCALE_OUT or decision.action is not Action.SCALE_OUT:
            return decision
        if sc is None or sc.no_room:
            return decision
        if sc.healthy_at is None:
            return replace(
                decision,
                action=Action.NONE,
                reason=f"{decision.reason}; waiting for the added replicas to be healthy",
            )
        cooled = (now - sc.healthy_at).total_seconds()
        if cooled < self.scale_out_cooldown_s:
            return replace(
                decision,
                action=Action.NONE,
                reason=f"{decision.reason}; scaled out {cooled:g}s ago, cooldown "
                f"{self.scale_out_cooldown_s:g}s",
            )
        return decision


def _not_before_window(rule: Rule, decision: Decision, elapsed: float) -> Decision:
    """A breach cannot be older than the switch: the new version's series starts there. The
    rule engine counts a period from its start, so a breach seen in the first periods would
    look up to one period longer than it is; M breaching periods need M periods since the
    switch, and an escalation its full duration."""
    if decision.verdict not in (RuleVerdict.BREACHING, RuleVerdict.WARNING):
        return decision
    m, _ = rule.m_of_n
    needed = max(float(m * rule.period_s), rule.breach_duration_s)
    if elapsed < needed:
        return replace(
            decision,
            action=Action.NONE,
            reason=f"{decision.evaluation.reason}; {elapsed:g}s since the switch, the rule "
            f"needs {needed:g}s",
        )
    escalate = rule.escalate_after_s
    if decision.verdict is RuleVerdict.BREACHING and escalate is not None and elapsed < escalate:
        return replace(
            decision,
            action=Action.NOTIFY,
            verdict=RuleVerdict.WARNING,
            reason=f"warning: {decision.evaluation.reason}; {elapsed:g}s since the switch, "
            f"escalates at {escalate:g}s",
        )
    return decision


def _period_origin(rule: Rule, since: datetime) -> datetime:
    """Where the new version's periods start: the multiple of the rule's period (seconds since
    the epoch) at or before the switch, the grid the metric sources write on (CloudWatch's
    periods, the local collector's intervals).

    On that grid a period can be judged the moment it ends; counted from the switch instead,
    each period would wait for the source's next sample after its end, up to a whole sample
    interval. The part of the first period before the switch holds only the new target
    group's own traffic (smoke checks through the test listener), so it is still the new
    version that is judged."""
    p = rule.period_s
    ts = since.timestamp()
    return since - timedelta(seconds=ts - math.floor(ts / p) * p)


def _judgeable(rule: Rule, points: tuple[Datapoint, ...]) -> bool:
    return any(d.samples >= rule.min_samples for d in points) if rule.min_samples else bool(points)


def _in_window(rule: Rule, series: Series, now: datetime) -> bool:
    oldest = now - timedelta(seconds=rule.window_s)
    return any(oldest <= d.timestamp < now for d in series.datapoints)


def _settled(rule: Rule, series: Series, since: datetime, now: datetime) -> datetime:
    """The moment to judge at: the end of the newest period the metric source has written.

    A collector writes a period's sample when the period ends, so the period in progress has
    no data yet; judged at ``now`` it would count as missing (with the default treatment, as
    good) and a breach of M of M periods could never be seen. Data later than two periods is
    not waited for: from then on missing periods count as missing data again. (When queries
    fail, the last good data is judged at ``now``, so it ages out of the window.)"""
    if not series.datapoints:
        return now
    newest = max(d.timestamp for d in series.datapoints)
    end = newest + timedelta(seconds=rule.period_s)
    floor = now - timedelta(seconds=2 * rule.period_s)
    return min(now, max(end, floor, since))


def _hold(rr: RollbackRule, decision: Decision, state: _RuleState, now: datetime) -> float:
    """How much longer this rule needs before it can settle (0: it has settled)."""
    rule = rr.rule
    ev = decision.evaluation
    if decision.verdict is RuleVerdict.WARNING and rule.escalate_after_s is not None:
        return max(0.0, rule.escalate_after_s - ev.breach_duration_s) + rule.period_s
    sc = state.scale
    if (
        sc is not None
        and not sc.no_room
        and rr.action is RuleAction.SCALE_OUT_THEN_ROLLBACK
        and decision.verdict in (RuleVerdict.BREACHING, RuleVerdict.WARNING)
    ):
        anchor = sc.healthy_at or sc.started_at
        left = rr.scale_out_grace_s - (now - anchor).total_seconds()
        return max(0.0, left) + rule.period_s
    building = any(p.state is PeriodState.BREACH for p in ev.periods)
    if decision.action is Action.NONE and building:
        # A breach building up (any breaching period in the window, not only the newest:
        # the newest may still be being collected): give it the time to fill the window.
        need = max(rule.window_s, rule.breach_duration_s) - ev.breach_duration_s
        return max(0.0, need) + rule.period_s
    return 0.0


def _summary(decisions: list[Decision]) -> str:
    calm = [d for d in decisions if d.verdict is RuleVerdict.OK and not d.evaluation.breaches]
    ok = [d.rule for d in calm]
    other = [f"{d.rule}: {d.reason}" for d in decisions if d not in calm]
    parts = []
    if ok:
        parts.append(f"{', '.join(ok)} within limits")
    parts.extend(other)
    return "; ".join(parts) or "no rules"
