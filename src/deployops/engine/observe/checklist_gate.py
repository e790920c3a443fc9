"""The during-deploy checklist (CHK-2) judged by the engine while it watches the new version.

The limits of the guide — error rate < 1 %, P99 < 500 ms, CPU < 70 %, memory < 80 %, health
checks passing — are read from the same metric source and for the same target group as the
rollback rules (RB-1), but judged separately: a release with 3 % errors breaks no rollback
rule (5 %) and still fails the checklist. What a breach does is the item's action:

- ``rollback``: the watch step fails and the engine flips traffic back (exit 3);
- ``hold``: the deployment waits for a person's decision
  (``deployops checklist decide ID --continue | --rollback``); no decision within the item's
  ``hold_timeout`` rolls back;
- ``warn``: recorded and notified, the deployment carries on.

:class:`GatedObserver` puts the two side by side: a checklist rollback wins, then whatever the
rules decide, then a checklist warning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from deployops.clock import Clock
from deployops.config.checklist import ResolvedItem
from deployops.domain.checklist import OnFailure
from deployops.domain.model import MetricName, MetricQuery, Statistic
from deployops.domain.plan import Observe
from deployops.domain.policy import Action
from deployops.engine.observe.health import Observer, ScaleAware, Verdict
from deployops.ports import Metrics

__all__ = ["DuringGate", "GatedObserver", "Judgement"]

# (item, metric, statistic, breach when the value is ...) — the same series the rules read.
_MEASURES: Mapping[str, tuple[MetricName, Statistic]] = {
    "error-rate": (MetricName.ERROR_RATE, Statistic.AVERAGE),
    "p99-latency": (MetricName.RESPONSE_TIME, Statistic.P99),
    "cpu": (MetricName.CPU, Statistic.AVERAGE),
    "memory": (MetricName.MEMORY, Statistic.AVERAGE),
    "health-checks": (MetricName.HEALTH_CHECK_FAILURES, Statistic.AVERAGE),
}
_UNITS = {"error-rate": "%", "p99-latency": " ms", "cpu": "%", "memory": "%", "health-checks": "%"}
# Items judged per request: too few requests are not judged (the rules' min_requests).
_PER_REQUEST = ("error-rate", "p99-latency")


@dataclass(frozen=True, slots=True)
class Judgement:
    item: str
    passed: bool | None  # None: not judged yet (too little data)
    value: float | None
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)


# record(item, status, summary, evidence): keep an item's state with the deployment.
Record = Callable[[str, str, str, Mapping[str, Any]], None]
# The decision on a hold made after ``since``: "continue", "rollback" or None (not yet).
Decision = Callable[[datetime], str | None]


class DuringGate:
    """Judges the during-deploy items every sample interval over the last ``window_s``."""

    def __init__(
        self,
        *,
        items: Sequence[ResolvedItem],
        metrics: Metrics,
        clock: Clock,
        period_s: int,
        min_requests: int,
        record: Record | None = None,
        decision: Decision | None = None,
        window_periods: int = 3,
    ) -> None:
        self.items = [i for i in items if i.name in _MEASURES]
        self._metrics = metrics
        self._clock = clock
        self.period_s = max(1, period_s)
        self.min_requests = min_requests
        self.window_s = float(self.period_s * window_periods)
        self._record = record
        self._decision = decision
        self._last: dict[str, str] = {}  # item -> status last recorded
        self._accepted: set[str] = set()  # held items a person let through

    def judge(self, item: ResolvedItem, step: Observe, since: datetime, now: datetime) -> Judgement:
        metric, stat = _MEASURES[item.name]
        threshold = float(item.options["threshold"])
        start = max(since, now - timedelta(seconds=self.window_s))
        if now <= start:
            return Judgement(item.name, None, None, "nothing measured yet")
        m = self._metrics.query(
            MetricQuery(
                metric=metric,
                scope=step.target_group,
                statistic=stat,
                start=start,
                end=now,
                period_s=self.period_s,
            )
        )
        unit = _UNITS[item.name]
        evidence: dict[str, Any] = {
            "metric": metric.value,
            "statistic": stat.value,
            "scope": step.target_group,
            "from": start.isoformat(),
            "to": now.isoformat(),
            "threshold": threshold,
        }
        if not m.ok:
            evidence["error"] = m.error
            return Judgement(item.name, None, None, f"metric query failed: {m.error}", evidence)
        points = [d for d in m.datapoints if d.timestamp >= since]
        samples = sum(d.samples for d in points)
        evidence["datapoints"] = len(points)
        evidence["samples"] = samples
        if not points or (item.name in _PER_REQUEST and samples < self.min_requests):
            return Judgement(
                item.name, None, None, f"{samples} requests so far: too few to judge", evidence
            )
        if item.name == "error-rate" and samples:
            value = sum(d.value * d.samples for d in points) / samples
        else:
            value = max(d.value for d in points)
        evidence["value"] = round(value, 3)
        if item.name == "health-checks":
            healthy = 100.0 - value
            evidence["healthy_percent"] = round(healthy, 2)
            passed = healthy >= threshold
            summary = f"{healthy:.0f}% of health checks passing (at least {threshold:g}%)"
        else:
            passed = value < threshold
            summary = f"{value:.2f}{unit} (limit below {threshold:g}{unit})"
        return Judgement(item.name, passed, value, summary, evidence)

    def evaluate(self, step: Observe, *, since: datetime, now: datetime) -> Verdict:
        """The most urgent checklist verdict (rollback, then hold, then warn), else continue."""
        breaches: list[tuple[ResolvedItem, Judgement]] = []
        for it in self.items:
            j = self.judge(it, step, since, now)
            if j.passed is None:
                continue
            if j.passed:
                self._keep(it.name, "passed", j)
            elif it.name in self._accepted:
                self._keep(it.name, "warned", j)
            else:
                breaches.append((it, j))
        order = {OnFailure.ROLLBACK: 0, OnFailure.HOLD: 1, OnFailure.WARN: 2}
        breaches.sort(key=lambda b: order.get(b[0].on_failure, 3))
        if not breaches:
            return Verdict(action=Action.NONE, reason="checklist limits met")
        item, j = breaches[0]
        rule = f"checklist:{item.name}"
        reason = f"{item.title}: {j.summary}"
        evidence = {**j.evidence, "checklist_item": item.name, "verdict": "breaching"}
        if item.on_failure is OnFailure.WARN:
            self._keep(item.name, "warned", j)
            return Verdict(action=Action.NOTIFY, rule=rule, reason=reason, evidence=evidence)
        if item.on_failure is OnFailure.HOLD:
            choice = self._hold(item, j)
            evidence["decision"] = choice
            if choice == "continue":
                self._accepted.add(item.name)
                self._keep(item.name, "warned", j, note="let through by a person's decision")
                return Verdict(
                    action=Action.NOTIFY,
                    rule=rule,
                    reason=f"{reason}; held, then let through by a person's decision",
                    evidence=evidence,
                )
            why = (
                "rolled back by a person's decision"
                if choice == "rollback"
                else (f"no decision within {float(item.options['hold_timeout']):g}s")
            )
            self._keep(item.name, "failed", j, note=why)
            return Verdict(
                action=Action.ROLLBACK, rule=rule, reason=f"{reason}; {why}", evidence=evidence
            )
        self._keep(item.name, "failed", j)
        return Verdict(action=Action.ROLLBACK, rule=rule, reason=reason, evidence=evidence)

    def _hold(self, item: ResolvedItem, j: Judgement) -> str:
        """Wait for a decision; ``timeout`` when none came within the item's hold_timeout."""
        timeout = float(item.options["hold_timeout"])
        since = self._clock.now()
        self._keep(item.name, "held", j, force=True)
        if self._decision is None:
            return "timeout"
        end = self._clock.monotonic() + timeout
        while self._clock.monotonic() < end:
            choice = self._decision(since)
            if choice in ("continue", "rollback"):
                return choice
            self._clock.sleep(min(0.5, max(0.0, end - self._clock.monotonic())))
        return "timeout"

    def _keep(
        self, item: str, status: str, j: Judgement, *, note: str = "", force: bool = False
    ) -> None:
        if self._record is None or (self._last.get(item) == status and not force):
            return
        self._last[item] = status
        self._record(item, status, j.summary + (f"; {note}" if note else ""), j.evidence)


class GatedObserver:
    """The rollback rules and the during-deploy checklist side by side (separately judged)."""

    def __init__(self, *, rules: Observer, gate: DuringGate) -> None:
        self.rules = rules
        self.gate = gate

    def evaluate(self, step: Observe, *, since: datetime, now: datetime) -> Verdict:
        g = self.gate.evaluate(step, since=since, now=now)
        if g.action is Action.ROLLBACK:
            return g
        r = self.rules.evaluate(step, since=since, now=now)
        if r.action is not Action.NONE or g.action is Action.NONE:
            return r
        return Verdict(
            action=g.action, rule=g.rule, reason=g.reason, evidence=g.evidence, hold_s=r.hold_s
        )

    # ScaleAware, for the rules' scale-outs
    def scale_limits(self) -> tuple[int, int]:
        if isinstance(self.rules, ScaleAware):
            return self.rules.scale_limits()
        return 10, 2

    def scaled_out(
        self, rule: str, *, at: datetime, desired: int, no_room: bool, detail: str
    ) -> None:
        if isinstance(self.rules, ScaleAware):
            self.rules.scaled_out(rule, at=at, desired=desired, no_room=no_room, detail=detail)
