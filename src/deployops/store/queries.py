"""The read model shared by the CLI and the web API: plain JSON views over the state store.

Each function takes the store (and where it matters the environment and "now") and returns
JSON-serialisable dicts, so ``deployops deployments show -o json`` and
``GET /api/deployments/{id}`` say the same thing in the same words.

    detail = deployment_detail(store, "dep-20261129-174501-7f3a")
    figures = delivery_figures(store, environment="production", now=clock.now())
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from deployops.store.records import (
    DEPLOYMENT_KINDS,
    AlarmHistoryRecord,
    AlarmStateRecord,
    AuditRecord,
    DecisionRecord,
    DeploymentRecord,
    EventRecord,
    JudgementRecord,
    MeasurementRecord,
    OperationRecord,
    ScalingActivity,
    StepRecord,
)
from deployops.store.store import StateStore

__all__ = [
    "FAILED_STATUSES",
    "alarm_json",
    "alarms_view",
    "audit_json",
    "decision_json",
    "delivery_figures",
    "deployment_detail",
    "deployment_json",
    "event_json",
    "incident_reports",
    "judgement_json",
    "judgement_lines",
    "list_deployments",
    "measurements_summary",
    "scaling_json",
    "step_json",
    "watch_of",
    "watch_view",
]

# A change that failed in production (change-failure rate): rolled back or failed after start.
FAILED_STATUSES = ("rolled_back", "failed")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def deployment_json(rec: DeploymentRecord) -> dict[str, Any]:
    return rec.to_json()


def step_json(s: StepRecord) -> dict[str, Any]:
    return {
        "seq": s.seq,
        "name": s.name,
        "phase": s.phase,
        "status": s.status,
        "params": s.params,
        "result": s.result,
        "error": s.error,
        "started_at": s.started_at.isoformat(),
        "finished_at": _iso(s.finished_at),
    }


def event_json(e: EventRecord) -> dict[str, Any]:
    return {
        "id": e.id,
        "ts": e.ts.isoformat(),
        "kind": e.kind,
        "level": e.level,
        "deployment_id": e.deployment_id,
        "environment": e.environment,
        "service": e.service,
        "message": e.message,
        "data": e.data,
    }


def decision_json(d: DecisionRecord) -> dict[str, Any]:
    return {
        "id": d.id,
        "ts": d.ts.isoformat(),
        "deployment_id": d.deployment_id,
        "rule": d.rule,
        "verdict": d.verdict,
        "action": d.action,
        "evidence": d.evidence,
    }


def judgement_json(j: JudgementRecord) -> dict[str, Any]:
    """A comparison of the colours: verdict, score, each metric's reason and numbers."""
    return {
        "id": j.id,
        "ts": j.ts.isoformat(),
        "deployment_id": j.deployment_id,
        "source": j.source,
        "verdict": j.verdict,
        "score": j.score,
        "reason": j.detail.get("reason", ""),
        "metrics": j.detail.get("metrics", []),
        "window": j.detail.get("window", {}),
        "held": j.held,
        "decision": j.decision or None,
        "decided_by": j.decided_by or None,
        "decided_at": j.decided_at.isoformat() if j.decided_at else None,
        "decision_reason": j.decision_reason or None,
    }


def judgement_lines(j: JudgementRecord) -> list[str]:
    """A judgement for people: the verdict line, then one line per metric's reason."""
    head = f"{j.source or 'comparison'}: {j.verdict} (score {j.score:g})"
    reason = str(j.detail.get("reason", ""))
    if reason:
        head += f" — {reason}"
    if j.held:
        head += (
            f"; held, decided {j.decision} by {j.decided_by or '-'}"
            if j.decision
            else "; held for a decision (deployops decide)"
        )
    lines = [head]
    for m in j.detail.get("metrics", []):
        lines.append(f"  {m.get('outcome', '')}: {m.get('reason', '')}")
    return lines


def measurements_summary(rows: list[MeasurementRecord]) -> list[dict[str, Any]]:
    """Per colour of a deployment: how many windows were kept, over what time, the requests
    and errors they saw and the worst latency P99 among them."""
    groups: dict[tuple[str, str, str], list[MeasurementRecord]] = defaultdict(list)
    for r in rows:
        groups[(r.role, r.colour, r.scope)].append(r)
    out = []
    for (role, colour, scope), rs in sorted(groups.items()):
        requests = sum(r.requests for r in rs)
        errors = sum(r.errors for r in rs)
        p99s = [
            float(r.stats["latency_ms"]["p99"])
            for r in rs
            if isinstance(r.stats.get("latency_ms"), dict) and "p99" in r.stats["latency_ms"]
        ]
        out.append(
            {
                "role": role,
                "colour": colour,
                "scope": scope,
                "sources": sorted({r.source for r in rs}),
                "windows": len(rs),
                "start": min(r.start for r in rs).isoformat(),
                "end": max(r.end for r in rs).isoformat(),
                "requests": requests,
                "errors": errors,
                "error_rate": round(100.0 * errors / requests, 3) if requests else None,
                "max_p99_ms": max(p99s) if p99s else None,
                "latency_distribution": any(r.latency for r in rs),
            }
        )
    return out


def alarm_json(a: AlarmStateRecord) -> dict[str, Any]:
    return {
        "environment": a.environment,
        "service": a.service,
        "alarm": a.alarm,
        "state": a.state,
        "reason": a.reason,
        "since": a.since.isoformat(),
        "evaluated_at": a.evaluated_at.isoformat(),
    }


def _history_json(h: AlarmHistoryRecord) -> dict[str, Any]:
    return {
        "id": h.id,
        "ts": h.ts.isoformat(),
        "environment": h.environment,
        "service": h.service,
        "alarm": h.alarm,
        "previous": h.previous,
        "state": h.state,
        "reason": h.reason,
        "action": h.action,
        "severity": h.severity,
        "evidence": h.evidence,
    }


def scaling_json(a: ScalingActivity) -> dict[str, Any]:
    return {
        "id": a.id,
        "ts": a.ts.isoformat(),
        "environment": a.environment,
        "service": a.service,
        "compute_service": a.compute_service,
        "cause": a.cause,
        "previous": a.previous,
        "desired": a.desired,
        "status": a.status,
        "reason": a.reason,
        "error": a.error,
    }


def audit_json(a: AuditRecord) -> dict[str, Any]:
    return {
        "ts": a.ts.isoformat(),
        "actor": a.actor,
        "action": a.action,
        "target": a.target,
        "detail": a.detail,
    }


def list_deployments(
    store: StateStore,
    *,
    environment: str | None = None,
    service: str | None = None,
    status: list[str] | None = None,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """Deployments newest first, as JSON."""
    rows = store.list_deployments(
        environment=environment, service=service, status=status, limit=limit
    )
    return [deployment_json(r) for r in rows]


def deployment_detail(
    store: StateStore,
    deployment_id: str,
    *,
    kinds: Sequence[str] = DEPLOYMENT_KINDS,
    now: datetime | None = None,
) -> dict[str, Any]:
    """One deployment with its steps, events and decisions (with their evidence), and its
    watch after the switch.

    ``deployment_id`` may be a unique prefix; an unknown one raises ``NotFoundError``.
    ``kinds`` widens it to other operations (restores, drills).
    """
    rec = store.require_deployment(deployment_id, kinds=kinds)
    op = store.get_operation(rec.id)
    return {
        **deployment_json(rec),
        "watch": watch_view(op, now=now) if op is not None else {"state": "none"},
        "steps": [step_json(s) for s in store.steps_for(rec.id)],
        "events": [event_json(e) for e in store.events(deployment_id=rec.id)],
        "decisions": [decision_json(d) for d in store.decisions(deployment_id=rec.id)],
        "judgements": [judgement_json(j) for j in store.judgements(deployment_id=rec.id)],
        "measurements": measurements_summary(store.measurements(deployment_id=rec.id)),
        "rolled_back_by": [
            r.id
            for r in store.list_deployments(environment=rec.environment, limit=200)
            if r.reverts == rec.id
        ],
    }


def alarms_view(
    store: StateStore, *, environment: str | None = None, history_limit: int = 50
) -> list[dict[str, Any]]:
    """Every alarm's current state with its recent state changes (oldest first)."""
    out = []
    for a in store.alarm_states(environment=environment):
        history = store.alarm_history(
            a.alarm, environment=a.environment, service=a.service, limit=history_limit
        )
        out.append({**alarm_json(a), "history": [_history_json(h) for h in history]})
    return out


def incident_reports(
    store: StateStore, *, environment: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Incident reports written after automatic rollbacks, newest first (with the Markdown)."""
    reports = [
        e
        for e in store.events(kind="incident.report", limit=10_000)
        if environment is None or e.environment == environment
    ]
    out = []
    for e in reversed(reports[-limit:]):
        out.append(
            {
                "id": e.id,
                "ts": e.ts.isoformat(),
                "deployment_id": e.deployment_id,
                "environment": e.environment,
                "service": e.service,
                "path": e.data.get("path", ""),
                "rollback_id": e.data.get("rollback_id", ""),
                "impact": e.data.get("impact", {}),
                "markdown": e.data.get("markdown", ""),
            }
        )
    return out


def _restore_seconds(store: StateStore, rec: DeploymentRecord) -> float | None:
    """Failure detected -> traffic healthy again: from the first failing decision (or the failed
    step) to the end of the rollback that followed (or the failed deployment's end, when the
    traffic never left the old version)."""
    decisions = [d for d in store.decisions(deployment_id=rec.id) if d.action == "rollback"]
    detected: datetime | None = decisions[0].ts if decisions else None
    if detected is None:
        failed = [s for s in store.steps_for(rec.id) if s.status == "failed"]
        detected = (failed[0].finished_at or failed[0].started_at) if failed else None
    restored: datetime | None = None
    for e in store.events(deployment_id=rec.id):
        if e.kind in ("traffic.restored", "deploy.rolled_back", "deploy.failed"):
            restored = e.ts
            break
    if detected is None or restored is None:
        return None
    return max((restored - detected).total_seconds(), 0.0)


def delivery_figures(
    store: StateStore,
    *,
    environment: str | None = None,
    now: datetime,
    days: int = 14,
    limit: int = 2000,
) -> dict[str, Any]:
    """The delivery figures per service: deployment frequency (per day), change-failure rate
    (share of deploys rolled back or failed), mean time to restore (failure detected -> traffic
    healthy) and lead time (deploy requested -> live), over the last ``days`` days, with a
    per-day trend for the overview's charts."""
    since = now - timedelta(days=days)
    rows = [
        r
        for r in store.list_deployments(environment=environment, limit=limit)
        if r.kind == "deploy" and r.created_at >= since and r.status != "running"
    ]
    by_service: dict[str, list[DeploymentRecord]] = defaultdict(list)
    for r in rows:
        by_service[r.service].append(r)
    services: dict[str, dict[str, Any]] = {}
    for service, recs in sorted(by_service.items()):
        services[service] = _figures(store, recs, days=days, since=since)
    return {
        "environment": environment,
        "days": days,
        "since": since.isoformat(),
        "services": services,
    }


def _figures(
    store: StateStore, recs: list[DeploymentRecord], *, days: int, since: datetime
) -> dict[str, Any]:
    failed = [r for r in recs if r.status in FAILED_STATUSES]
    lead = [
        (r.finished_at - r.created_at).total_seconds()
        for r in recs
        if r.status == "succeeded" and r.finished_at is not None
    ]
    restores = [s for r in failed if (s := _restore_seconds(store, r)) is not None]
    trend: dict[str, dict[str, Any]] = {}
    for i in range(days + 1):
        day = (since + timedelta(days=i)).date().isoformat()
        trend[day] = {"day": day, "deployments": 0, "failed": 0, "lead_time_s": []}
    for r in recs:
        bucket = trend.setdefault(
            r.created_at.date().isoformat(),
            {
                "day": r.created_at.date().isoformat(),
                "deployments": 0,
                "failed": 0,
                "lead_time_s": [],
            },
        )
        bucket["deployments"] += 1
        if r.status in FAILED_STATUSES:
            bucket["failed"] += 1
        if r.status == "succeeded" and r.finished_at is not None:
            bucket["lead_time_s"].append((r.finished_at - r.created_at).total_seconds())
    days_out = []
    for b in sorted(trend.values(), key=lambda b: str(b["day"])):
        leads = b.pop("lead_time_s", [])
        days_out.append({**b, "lead_time_s": _mean(leads)})
    return {
        "deployments": len(recs),
        "failed": len(failed),
        "deployment_frequency_per_day": round(len(recs) / days, 4) if days else 0.0,
        "change_failure_rate": round(len(failed) / len(recs), 4) if recs else 0.0,
        "time_to_restore_s": _mean(restores),
        "lead_time_s": _mean(lead),
        "trend": days_out,
    }


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


# ---------------------------------------------------------------------- watch after the switch
# The key of the watch in a deployment's ``detail`` (written by deployops.engine.watch_after).
WATCH = "watch"
# States in which the controller still has work to do; every other state has ended.
WATCHING, ROLLING_BACK = "watching", "rolling_back"
ACTIVE = (WATCHING, ROLLING_BACK)


def parse_time(value: Any) -> datetime | None:
    """An ISO timestamp stored in JSON, or ``None``."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def watch_of(op: OperationRecord) -> dict[str, Any]:
    """The watch recorded on ``op`` (empty when it never had one)."""
    w = op.detail.get(WATCH)
    return dict(w) if isinstance(w, Mapping) else {}


def watch_view(op: OperationRecord, *, now: datetime | None = None) -> dict[str, Any]:
    """The watch after the switch of a deployment, for people and pipelines: ``state``,
    ``until``, how it ended and why (``deployops deployments show``). ``under_watch`` is true
    while the controller still judges it; with ``now``, a period long over that no controller
    closed is said so."""
    w = watch_of(op)
    if not w:
        return {"state": "none", "under_watch": False, "summary": "not watched after the switch"}
    if op.kind not in DEPLOYMENT_KINDS:
        return {"state": "none", "under_watch": False, "summary": "not a deployment"}
    state = str(w.get("state", ""))
    until = w.get("until")
    out: dict[str, Any] = {
        "state": state,
        "under_watch": state in ACTIVE,
        "since": w.get("since"),
        "until": until,
        "ended_at": w.get("ended_at"),
        "reason": w.get("reason", ""),
    }
    for key in ("rollback_id", "rolled_back_at", "superseded_by", "report", "breach", "basis"):
        if w.get(key):
            out[key] = w[key]
    if state == WATCHING:
        end = parse_time(until)
        late = end is not None and now is not None and now > end + timedelta(seconds=60)
        out["summary"] = f"under watch until {until} ({w.get('basis', '')})" + (
            "; its period is over but no controller has closed it (is `deployops serve` running?)"
            if late
            else ""
        )
    elif state == ROLLING_BACK:
        breach = w.get("breach") or {}
        out["summary"] = (
            f"rolling back since {breach.get('at', '')}: {breach.get('rule', '')}: "
            f"{breach.get('reason', '')}"
        )
    elif state == "rolled_back":
        out["summary"] = (
            f"rolled back at {w.get('rolled_back_at', '')} by {w.get('rollback_id', '')} for "
            f"{w.get('reason', '')}"
        )
    elif state == "superseded":
        out["summary"] = str(w.get("reason", "superseded"))
    elif state == "clean":
        out["summary"] = f"ended clean at {w.get('ended_at', '')}: {w.get('reason', '')}"
    else:
        out["summary"] = f"{state}: {w.get('reason', '')}"
    return out
