"""After an automatic rollback: verify it, and write the incident report (RB-2 "verify").

:func:`verify_rollback` checks that the previous version serves production again: its
containers are healthy, the production listener forwards to it, the smoke checks answer through
it, and its metrics are back under the rules' thresholds. :func:`write_incident_report` turns
the store's record of the deployment (steps, events, decisions with their evidence) into a
Markdown report with the timeline, the evidence and the user impact; it is stored as an event
(``incident.report``) and written to ``<project root>/.deployops/reports/<deployment-id>.md``.

Both read the settings frozen into the deployment's plan (``ctx.settings``: smoke checks,
rollback rules, the reports folder), never the live ``deployops.yaml``.

>>> checked = verify_rollback(ctx, rec, target_group="web-blue")  # doctest: +SKIP
>>> write_incident_report(ctx, rec, rollback_id=rb_id, flip=flip, verification=checked,
...                       trigger=verdict, error=message)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from deployops.domain.model import MetricName, MetricQuery, Statistic
from deployops.domain.names import prod_listener
from deployops.engine.observe.health import Verdict
from deployops.engine.operation import StepContext
from deployops.engine.planning.deploy import frozen_rollback, frozen_smoke_checks
from deployops.errors import DeploymentError
from deployops.store import (
    DecisionRecord,
    DeploymentRecord,
    EventRecord,
    JudgementRecord,
    StepRecord,
)
from deployops.store.queries import measurements_summary

__all__ = [
    "measure_impact",
    "render_incident_report",
    "verify_rollback",
    "write_incident_report",
]


# ---------------------------------------------------------------------- verification
def verify_rollback(
    ctx: StepContext, rec: DeploymentRecord, *, target_group: str, wait_s: float = 0.0
) -> dict[str, Any]:
    """Health, traffic, smoke checks and metrics of the version production went back to.

    ``wait_s`` (one sample interval) lets the metric source see requests served after the
    flip before they are judged. Metrics without data yet are reported, not failed.
    """
    clock = ctx.clock
    began = clock.now()
    if wait_s > 0:
        clock.sleep(wait_s)
    now = clock.now()
    ports = ctx.ports
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool | None, detail: str) -> None:
        status = "ok" if ok else ("no data" if ok is None else "failed")
        checks.append({"check": name, "status": status, "detail": detail})

    svc = ports.compute.describe_service(target_group)
    if svc is None:
        check("health", False, f"{target_group} does not exist")
    else:
        check(
            "health",
            svc.desired > 0 and svc.healthy >= svc.desired,
            f"{svc.healthy}/{svc.desired} containers of {target_group} healthy",
        )
    prod = prod_listener(rec.service)
    listener = ports.traffic.describe_listener(prod)
    check(
        "traffic",
        listener.target_group == target_group,
        f"{prod} forwards to {listener.target_group or 'nothing'}",
    )
    for path, status in frozen_smoke_checks(ctx.settings):
        url = f"http://{listener.host}:{listener.port}{path}"
        res = ports.prober.get(url, timeout_s=5.0)
        check(
            f"smoke {path}",
            res.status == status,
            f"{url} answered {res.status or res.error}, expected {status}",
        )
    policy = frozen_rollback(ctx.settings).policy()
    for rr in policy.rules:
        rule = rr.rule
        span = wait_s if wait_s > 0 else float(rule.period_s)
        start = now - timedelta(seconds=span)
        m = ports.metrics.query(
            MetricQuery(
                metric=rule.metric,
                scope=target_group,
                statistic=rule.statistic,
                start=start,
                end=now + timedelta(microseconds=1),
                period_s=max(1, math.ceil(span)),
            )
        )
        name = f"metric {rule.name}"
        if not m.ok:
            check(name, None, f"query failed: {m.error}")
            continue
        points = [d for d in m.datapoints if d.samples >= rule.min_samples]
        if not points:
            check(name, None, f"no judgeable {rule.metric.value} since the flip yet")
            continue
        worst = max(points, key=lambda d: d.value if ">" in rule.comparison.value else -d.value)
        breached = rule.comparison.breaches(worst.value, rule.threshold)
        check(
            name,
            not breached,
            f"{rule.metric.value} {rule.statistic.value} {worst.value:.4g} "
            f"({'breaches' if breached else 'within'} {rule.comparison.value} "
            f"{rule.threshold:g})",
        )
    failed = [c for c in checks if c["status"] == "failed"]
    summary = (
        f"{target_group} verified: " + ", ".join(c["check"] for c in checks if c["status"] == "ok")
        if not failed
        else "verification failed: " + "; ".join(f"{c['check']}: {c['detail']}" for c in failed)
    )
    return {
        "ok": not failed,
        "target_group": target_group,
        "started": began.isoformat(),
        "at": now.isoformat(),
        "checks": checks,
        "summary": summary,
    }


# ---------------------------------------------------------------------- report
def write_incident_report(
    ctx: StepContext,
    rec: DeploymentRecord,
    *,
    rollback_id: str,
    flip: Mapping[str, Any] | None,
    verification: Mapping[str, Any],
    trigger: Verdict | None,
    error: str,
    impact: Mapping[str, Any] | None = None,
) -> Path:
    """Render the report, store it as an ``incident.report`` event and write it to
    ``.deployops/reports/<deployment-id>.md``. Returns the file's path."""
    store = ctx.store
    impact = dict(impact) if impact is not None else measure_impact(ctx, rec, flip)
    text = render_incident_report(
        rec,
        steps=store.steps_for(rec.id),
        events=store.events(deployment_id=rec.id),
        decisions=store.decisions(deployment_id=rec.id),
        rollback_id=rollback_id,
        flip=flip,
        verification=verification,
        impact=impact,
        trigger=trigger,
        error=error,
        generated_at=ctx.clock.now(),
        judgements=store.judgements(deployment_id=rec.id),
        measurements=measurements_summary(store.measurements(deployment_id=rec.id)),
    )
    folder = Path(str(ctx.settings.get("reports_dir") or ".deployops/reports"))
    path = folder / f"{rec.id}.md"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise DeploymentError(
            f"cannot write the incident report {path}: {exc.strerror or exc}",
            hint=f"make {folder} writable; the report is also stored as an event",
        ) from exc
    finally:
        store.add_event(
            EventRecord(
                ts=ctx.clock.now(),
                kind="incident.report",
                level="warning",
                deployment_id=rec.id,
                environment=rec.environment,
                service=rec.service,
                message=f"incident report for {rec.id}: {path}",
                data={
                    "path": str(path),
                    "rollback_id": rollback_id,
                    "impact": impact,
                    "markdown": text,
                },
            )
        )
    return path


def measure_impact(
    ctx: StepContext, rec: DeploymentRecord, flip: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Who was affected: how long the new version had production traffic, how many requests
    it served in that time and how many of them failed (from the metric source). Measured
    right after the flip, before the failed version is scaled down."""
    # The first production request the new version could get: the switch, or the first
    # step of a canary or linear shift.
    switched = next(
        (
            s.result.get("switched_at") or s.result.get("shifted_at")
            for s in ctx.store.steps_for(rec.id)
            if s.name in ("SwitchListener", "ShiftTraffic") and s.status == "succeeded"
        ),
        None,
    )
    end = datetime.fromisoformat(str(flip["at"])) if flip else ctx.clock.now()
    if not switched:
        return {"exposed_s": 0.0, "note": "production traffic never reached the new version"}
    start = datetime.fromisoformat(str(switched))
    exposed = max(0.0, (end - start).total_seconds())
    out: dict[str, Any] = {
        "exposed_s": round(exposed, 3),
        "from": start.isoformat(),
        "to": end.isoformat(),
        # the share of production the new version had when it was taken out of it
        "share_of_traffic": int(flip.get("percent", 100)) if flip else 100,
    }
    if exposed <= 0:
        return out
    served = _served(ctx, rec, end)
    if isinstance(served, str):
        out["note"] = f"request counts unavailable: {served}"
        return out
    requests, failed, source = served
    out["requests"] = requests
    out["failed_requests"] = failed
    out["error_rate"] = round(100.0 * failed / requests, 3) if requests else 0.0
    out["counted_from"] = source
    return out


# How long the impact count waits for the metric source to have written the requests the
# failed version answered up to the flip (the proxy logs each request when it completes).
IMPACT_SETTLE_S = 30.0


def _served(
    ctx: StepContext, rec: DeploymentRecord, flipped: datetime
) -> tuple[int, int, str] | str:
    """Every request the failed version answered, from its first (a smoke check, the first
    production request) to its last (one still in flight at the flip): the proxy's own
    per-request log of its target group since the deployment began. Waits (at most
    :data:`IMPACT_SETTLE_S`) until the source has written a sample that began after the flip,
    so nothing answered before it is missing."""
    metrics = ctx.ports.metrics
    scopes = [rec.target_group]
    # The target group served nothing of this version before the deployment began, and the
    # version it served before (the same colour, two deployments ago) was drained by then.
    source = f"proxy log of {rec.target_group} since {rec.created_at.isoformat()}"
    start = rec.created_at

    def count(metric: MetricName) -> tuple[int, datetime | None] | str:
        """Requests (``RequestCount``) or failed requests (``ErrorRate`` × requests)."""
        total = 0.0
        newest: datetime | None = None
        end = ctx.clock.now() + timedelta(seconds=1)
        rate = metric is MetricName.ERROR_RATE
        for scope in scopes:
            m = metrics.query(
                MetricQuery(
                    metric=metric,
                    scope=scope,
                    statistic=Statistic.AVERAGE if rate else Statistic.SUM,
                    start=start,
                    end=end,
                    period_s=1,
                )
            )
            if not m.ok:
                return m.error
            if rate:
                total += sum(d.value * d.samples / 100.0 for d in m.datapoints)
            else:
                total += sum(d.value for d in m.datapoints)
            for d in m.datapoints:
                newest = d.timestamp if newest is None or d.timestamp > newest else newest
        return round(total), newest

    deadline = ctx.clock.monotonic() + IMPACT_SETTLE_S
    while True:
        got = count(MetricName.REQUEST_COUNT)
        if isinstance(got, str):
            return got
        requests, newest = got
        if (newest is not None and newest >= flipped) or ctx.clock.monotonic() >= deadline:
            break
        ctx.clock.sleep(0.5)
    failed = count(MetricName.ERROR_RATE)
    if isinstance(failed, str):
        return failed
    return requests, failed[0], source


def render_incident_report(
    rec: DeploymentRecord,
    *,
    steps: Sequence[StepRecord],
    events: Sequence[EventRecord],
    decisions: Sequence[DecisionRecord],
    rollback_id: str,
    flip: Mapping[str, Any] | None,
    verification: Mapping[str, Any],
    impact: Mapping[str, Any],
    trigger: Verdict | None,
    error: str,
    generated_at: datetime,
    judgements: Sequence[JudgementRecord] = (),
    measurements: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The Markdown report. Pure: everything it shows is passed in."""
    t0 = rec.created_at
    lines: list[str] = [
        f"# Incident: {rec.service} {rec.version} rolled back in {rec.environment}",
        "",
        f"_Generated {generated_at.isoformat(timespec='seconds')} for deployment {rec.id}._",
        "",
        "## Summary",
        "",
        "| | |",
        "|---|---|",
        f"| Deployment | `{rec.id}` ({rec.kind}, {rec.strategy}) |",
        f"| Service / environment | {rec.service} / {rec.environment} |",
        f"| Release | {rec.version} (`{rec.task_definition or '-'}`, {rec.target_group}) |",
        f"| Returned to | {rec.previous_version or '-'} "
        f"(`{rec.previous_task_definition or '-'}`, {rec.previous_target_group or '-'}) |",
        f"| Rollback record | `{rollback_id}` (reverts `{rec.id}`) |",
    ]
    if trigger is not None:
        lines.append(f"| Trigger | **{_cell(trigger.rule)}**: {_cell(trigger.reason)} |")
        blamed = trigger.evidence.get("caused_by_release")
        if blamed is not None:
            lines.append(f"| Caused by this release | {'yes' if blamed else 'no'} |")
    else:
        lines.append(f"| Trigger | {_cell(error)} |")
    if flip:
        lines.append(
            f"| Rollback | {flip['listener']} switched {flip['from']} → {flip['to']} in "
            f"{float(flip['ms']):.1f} ms at {flip['at']} |"
        )
    lines.append(f"| Verification | {_cell(str(verification.get('summary', '')))} |")
    lines += ["", "## Impact", ""]
    exposed = float(impact.get("exposed_s", 0.0))
    lines.append(
        f"- Production traffic on {rec.version}: {exposed:g} s "
        f"({impact.get('share_of_traffic', 0)} % of requests)"
        if exposed
        else "- Production traffic never reached the new version."
    )
    if "requests" in impact:
        lines.append(f"- Requests served by {rec.version}: {impact['requests']}")
    if "failed_requests" in impact:
        lines.append(
            f"- Failed requests (5xx): {impact['failed_requests']} "
            f"({impact.get('error_rate', 0):g} %)"
        )
    if "note" in impact:
        lines.append(f"- {impact['note']}")
    lines += ["", "## Timeline", "", "| time | T+ s | event |", "|---|---|---|"]
    for ev in events:
        if ev.kind == "incident.report":
            continue
        plus = (ev.ts - t0).total_seconds()
        lines.append(
            f"| {ev.ts.isoformat(timespec='seconds')} | {plus:.1f} | "
            f"{ev.level}: {_cell(ev.message)} |"
        )
    lines += ["", "## Steps", "", "| # | step | phase | status | note |", "|---|---|---|---|---|"]
    for s in steps:
        lines.append(
            f"| {s.seq + 1} | {s.name} | {s.phase} | {s.status} | {_cell(s.error or '')} |"
        )
    lines += ["", "## Evidence", ""]
    if not decisions:
        lines.append("No metric decision was recorded.")
    for d in decisions:
        lines += _decision_section(d)
    if judgements:
        lines += ["", "## Comparison with the previous version", ""]
        for j in judgements:
            lines += _judgement_section(j)
    if measurements:
        lines += [
            "",
            "## Measurements",
            "",
            "| colour | role | windows | from | to | requests | errors | error rate | worst P99 |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for m in measurements:
            rate = "-" if m.get("error_rate") is None else f"{m['error_rate']:g} %"
            p99 = "-" if m.get("max_p99_ms") is None else f"{m['max_p99_ms']:.4g} ms"
            lines.append(
                f"| {m['colour']} ({m['scope']}) | {m['role']} | {m['windows']} | {m['start']} "
                f"| {m['end']} | {m['requests']} | {m['errors']} | {rate} | {p99} |"
            )
        lines += [
            "",
            "Every window is kept for the measurements retention; "
            "`deployops rules backtest` replays them against a changed policy.",
        ]
    lines += ["", "## Verification", "", "| check | status | detail |", "|---|---|---|"]
    for c in verification.get("checks", ()):
        lines.append(f"| {c['check']} | {c['status']} | {_cell(str(c['detail']))} |")
    lines += [
        "",
        "## Next steps",
        "",
        f"- `deployops deployments show {rec.id}` has every step and decision.",
        f"- Fix {rec.version} and deploy a new version; the failing one stays recorded.",
        "- Record the lessons learned and hand-over notes (CHK-3).",
        "",
    ]
    return "\n".join(lines)


def _decision_section(d: DecisionRecord) -> list[str]:
    ev = d.evidence
    out = [f"### {d.ts.isoformat(timespec='seconds')} — {d.rule} → {d.action}", ""]
    out.append(f"- Reason: {d.verdict}")
    evaluation = ev.get("evaluation") if isinstance(ev.get("evaluation"), dict) else None
    if evaluation:
        out.append(f"- Condition: `{evaluation.get('condition', '')}`")
        out.append(f"- Verdict: {evaluation.get('verdict', '')} ({evaluation.get('reason', '')})")
    if "caused_by_release" in ev:
        out.append(f"- Caused by this release: {'yes' if ev['caused_by_release'] else 'no'}")
    base = ev.get("baseline") if isinstance(ev.get("baseline"), dict) else None
    source = ev.get("baseline_source") if isinstance(ev.get("baseline_source"), dict) else None
    if base:
        where = ""
        if source:
            where = f" ({source.get('scope', '')}, {source.get('source', '')})"
        out.append(f"- Baseline{where}: {base.get('verdict', '')} — {base.get('reason', '')}")
    elif source and source.get("error"):
        out.append(f"- Baseline ({source.get('scope', '')}): unavailable, {source['error']}")
    if evaluation and evaluation.get("periods"):
        out += ["", "| period start | value | samples | state |", "|---|---|---|---|"]
        for p in evaluation["periods"]:
            value = p.get("value")
            shown = "-" if value is None else f"{float(value):.4g}"
            out.append(f"| {p.get('start', '')} | {shown} | {p.get('samples', 0)} | {p['state']} |")
    if not evaluation:
        plain = {k: v for k, v in ev.items() if not isinstance(v, dict | list)}
        if plain:
            out.append(f"- Evidence: {', '.join(f'{k}={v}' for k, v in plain.items())}")
    out.append("")
    return out


def _judgement_section(j: JudgementRecord) -> list[str]:
    """Why a comparison came out as it did, in numbers: one row per metric."""
    out = [
        f"### {j.ts.isoformat(timespec='seconds')} — {j.source or 'comparison'}: "
        f"**{j.verdict}** (score {j.score:g})",
        "",
    ]
    reason = j.detail.get("reason")
    if reason:
        out.append(f"- Verdict: {reason}")
    if j.held:
        if j.decision:
            out.append(
                f"- Held for a decision: {j.decision} by {j.decided_by or '-'}"
                + (f" ({j.decision_reason})" if j.decision_reason else "")
            )
        else:
            out.append("- Held for a decision: none recorded")
    metrics = j.detail.get("metrics") or []
    if metrics:
        out += ["", "| metric | outcome | why |", "|---|---|---|"]
        for m in metrics:
            critical = " (critical)" if m.get("critical") else ""
            out.append(
                f"| {m.get('name', '')}{critical} | {m.get('outcome', '')} "
                f"| {_cell(str(m.get('reason', '')))} |"
            )
    out.append("")
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
