"""Chart data for a deployment's rollback rules (RB-1): per rule, the measured periods against
the threshold, the evaluation window, the baseline (the previous version's periods, RB-2) and
a marker per decision, all taken from the evidence stored with each decision.

    charts = rule_charts(deployment_detail(store, "dep-..."))
    charts[0]["threshold"], charts[0]["series"][0], charts[0]["decisions"][0]["action"]
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

__all__ = ["rule_charts"]


def _points(periods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"t": p.get("start"), "value": p.get("value"), "state": p.get("state")}
        for p in periods
        if p.get("start")
    ]


def _evaluation(evidence: dict[str, Any]) -> dict[str, Any]:
    """A decision's evaluation: nested under ``evaluation`` (a policy decision, with its
    baseline beside it) or the evidence itself (a bare rule evaluation)."""
    nested = evidence.get("evaluation")
    return nested if isinstance(nested, dict) else evidence


def rule_charts(detail: dict[str, Any]) -> list[dict[str, Any]]:
    """One chart per rule that was judged with evidence, the failing rule first."""
    by_rule: dict[str, list[dict[str, Any]]] = {}
    verdicts: dict[str, dict[str, Any]] = {}
    for d in detail.get("decisions", []):
        ev = d.get("evidence") or {}
        for name, note in (ev.get("rules") or {}).items():
            if isinstance(note, dict):
                verdicts[name] = note
        if isinstance(_evaluation(ev).get("rule"), dict):
            by_rule.setdefault(d["rule"], []).append(d)
    charts = []
    for name, decisions in by_rule.items():
        last = decisions[-1]
        ev = last["evidence"]
        evaluation = _evaluation(ev)
        rule = evaluation["rule"]
        periods = list(evaluation.get("periods") or [])
        n = int(rule.get("evaluation_periods") or 1)
        period_s = float(rule.get("period_s") or 60)
        window_from = periods[-n]["start"] if len(periods) >= n else None
        window_to = None
        if window_from:
            window_to = (
                datetime.fromisoformat(periods[-1]["start"]) + timedelta(seconds=period_s)
            ).isoformat()
        baseline = ev.get("baseline") or {}
        charts.append(
            {
                "rule": name,
                "metric": rule.get("metric"),
                "statistic": rule.get("statistic"),
                "comparison": rule.get("comparison"),
                "threshold": rule.get("threshold"),
                "condition": evaluation.get("condition", ""),
                "period_s": period_s,
                "evaluation_periods": n,
                "series": _points(periods),
                "baseline": _points(list(baseline.get("periods") or [])),
                "baseline_source": ev.get("baseline_source") or {},
                "window": {"from": window_from, "to": window_to},
                "decisions": [
                    {
                        "ts": d["ts"],
                        "at": _evaluation(d.get("evidence") or {}).get("at") or d["ts"],
                        "verdict": d["verdict"],
                        "action": d["action"],
                    }
                    for d in decisions
                ],
                "failed": any(d["action"] == "rollback" for d in decisions),
            }
        )
    charts.sort(key=lambda c: (not c["failed"], c["rule"]))
    return charts
