"""``deployops rules backtest``: replay the stored measurements of past deployments against a
(changed) rollback policy and say, deployment by deployment, what it would have decided and
when, beside what happened.

The replay itself is pure (:mod:`deployops.domain.backtest`); this module reads the store:
each deployment's kept windows (``measurements``), when its observation began (the ``Observe``
step), and what happened (its status and the time of its rollback decision).

    results = run_backtest(store, settings_for=lambda service: settings, since=cutoff)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from deployops.config.rollback import RollbackSettings
from deployops.domain.backtest import (
    OBSERVE_SOURCE,
    Change,
    JudgeReplay,
    ObservedWindow,
    Outcome,
    compare,
    judged_outcome,
    replay_judge,
    replay_rules,
)
from deployops.engine.observe.measure import observed
from deployops.store import DeploymentRecord, StateStore

__all__ = ["NEW_ROLES", "PREVIOUS_ROLES", "DeploymentBacktest", "run_backtest"]

#: The roles a stored window of the new version / of the one it replaces is kept under
#: (the observation says new/previous, a canary step canary/baseline).
NEW_ROLES = ("new", "canary")
PREVIOUS_ROLES = ("previous", "baseline")


@dataclass(frozen=True, slots=True)
class DeploymentBacktest:
    """One deployment: what happened, what the policy would have done, and the difference.
    Times are also given as seconds since its observation began (``T+``)."""

    deployment: DeploymentRecord
    began: datetime
    windows: int
    rolled_back_at: datetime | None
    rolled_back_by: str  # the rule or reason recorded then
    would: Outcome
    would_at: datetime | None
    would_rule: str
    would_reason: str
    change: Change
    judgements: tuple[JudgeReplay, ...] = ()

    @staticmethod
    def _plus(began: datetime, at: datetime | None) -> float | None:
        return None if at is None else round((at - began).total_seconds(), 1)

    @property
    def happened(self) -> str:
        if self.rolled_back_at is not None:
            return "rolled back"
        return self.deployment.status.replace("_", " ")

    def to_dict(self) -> dict[str, Any]:
        d = self.deployment
        return {
            "deployment_id": d.id,
            "environment": d.environment,
            "service": d.service,
            "version": d.version,
            "observed_from": self.began.isoformat(),
            "windows": self.windows,
            "happened": {
                "status": d.status,
                "rolled_back": self.rolled_back_at is not None,
                "at": self.rolled_back_at.isoformat() if self.rolled_back_at else None,
                "t_plus_s": self._plus(self.began, self.rolled_back_at),
                "by": self.rolled_back_by or None,
            },
            "would": {
                "outcome": self.would.value,
                "at": self.would_at.isoformat() if self.would_at else None,
                "t_plus_s": self._plus(self.began, self.would_at),
                "rule": self.would_rule or None,
                "reason": self.would_reason or None,
            },
            "change": self.change.value,
            "judgements": [
                {
                    "source": j.source,
                    "at": j.at.isoformat(),
                    "verdict": j.judgement.verdict.value,
                    "score": j.judgement.score,
                    "reason": j.judgement.reason,
                    "metrics": [m.reason for m in j.judgement.metrics],
                }
                for j in self.judgements
            ],
        }


def run_backtest(
    store: StateStore,
    *,
    settings_for: Callable[[str], RollbackSettings],
    since: datetime | None = None,
    environment: str | None = None,
) -> list[DeploymentBacktest]:
    """Every deployment with stored windows (ending at or after ``since``), oldest first,
    replayed under ``settings_for(service)``."""
    out: list[DeploymentBacktest] = []
    for dep_id in store.measured_deployments(since=since, environment=environment):
        rec = store.get_deployment(dep_id)
        if rec is None or rec.kind != "deploy":
            continue  # pruned, or not a deployment of a new version
        out.append(_one(store, rec, settings_for(rec.service)))
    return out


def _one(
    store: StateStore, rec: DeploymentRecord, settings: RollbackSettings
) -> DeploymentBacktest:
    rows = store.measurements(deployment_id=rec.id)
    new = observed(r for r in rows if r.role in NEW_ROLES)
    previous = observed(r for r in rows if r.role in PREVIOUS_ROLES)
    observe = [s for s in store.steps_for(rec.id) if s.name == "Observe"]
    began = observe[0].started_at if observe else min(w.start for w in new or previous)
    # The rules judge the new colour over all its windows; where two sources kept the same
    # period (a canary step and the observation after it), the observation's counts once.
    by_start: dict[datetime, ObservedWindow] = {}
    for w in new:
        if w.start not in by_start or w.source == OBSERVE_SOURCE:
            by_start[w.start] = w
    rules = replay_rules(settings.policy(), list(by_start.values()), previous, since=began)
    judged = replay_judge(settings.analysis.judge_policy(), new, previous)
    outcome, stopper = judged_outcome(judged, on_marginal=settings.analysis.on_marginal)
    would, would_at, rule, reason = Outcome.NONE, None, "", ""
    if rules.rollback_at is not None:
        would, would_at, rule, reason = (
            Outcome.ROLLBACK,
            rules.rollback_at,
            rules.rule,
            rules.reason,
        )
    if stopper is not None and (would_at is None or stopper.at < would_at):
        would, would_at = outcome, stopper.at
        rule = f"comparison ({stopper.source})"
        reason = stopper.judgement.reason
    rolled_back_at, by = _what_happened(store, rec)
    rollback_at = would_at if would is Outcome.ROLLBACK else None
    period = min((r.rule.period_s for r in settings.policy().rules), default=60)
    return DeploymentBacktest(
        deployment=rec,
        began=began,
        windows=len(rows),
        rolled_back_at=rolled_back_at,
        rolled_back_by=by,
        would=would,
        would_at=would_at,
        would_rule=rule,
        would_reason=reason,
        change=compare(
            rolled_back_at=rolled_back_at, would_at=rollback_at, tolerance_s=float(period)
        ),
        judgements=tuple(judged),
    )


def _what_happened(store: StateStore, rec: DeploymentRecord) -> tuple[datetime | None, str]:
    """When the deployment was rolled back and by what (``None`` if it was not)."""
    if rec.status != "rolled_back":
        return None, ""
    decisions: Sequence[Any] = [
        d for d in store.decisions(deployment_id=rec.id) if d.action == "rollback"
    ]
    if decisions:
        return decisions[0].ts, decisions[0].rule
    decided = [j for j in store.judgements(deployment_id=rec.id) if j.decision == "rollback"]
    if decided and decided[0].decided_at is not None:
        return decided[0].decided_at, f"decided by {decided[0].decided_by}"
    return rec.finished_at or rec.updated_at, rec.error or "rolled back"
