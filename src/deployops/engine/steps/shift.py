"""The canary and linear shifts: a share of production on the new version, then its bake.

``ShiftTraffic`` sets the production listener's weights (HAProxy's runtime API on local, a
weighted forward action on an ALB) and reads them back. ``Bake`` watches the step: the
rollback rules on the new version for the bake time (the ``Observe`` handler, with the
previous colour as a baseline that takes traffic of its own), then the step's comparison of
the two colours over the same window. A failure of either fails the step; the deployment's
failure handler (:mod:`deployops.engine.recovery`) puts every request back on the previous
colour first, then records, notifies and reports like any automatic rollback.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import replace
from datetime import datetime
from typing import Any

from deployops.domain.judge import (
    Judgement,
    JudgeMetric,
    JudgePolicy,
    JudgeVerdict,
    MetricOutcome,
    judge,
)
from deployops.domain.model import MetricName, MetricQuery, Statistic
from deployops.domain.plan import Bake, ShiftTraffic
from deployops.domain.policy import Action
from deployops.engine.events import Notice
from deployops.engine.observe import measure
from deployops.engine.observe.decision import record_judgement, wait_for_decision
from deployops.engine.observe.health import Verdict
from deployops.engine.observe.watch import (
    PROGRESS_LINE_EVERY_S,
    ROLLBACK_VERDICT,
    ObserveHandler,
    decide,
    operation_fields,
)
from deployops.engine.operation import StepContext
from deployops.engine.planning.deploy import frozen_rollback
from deployops.errors import DeploymentError
from deployops.ports import LatencySketches

__all__ = ["COMPARISON_RULE", "BakeHandler", "shift_traffic"]

# The rule name a failed comparison is recorded under (decisions, notices, incident report).
COMPARISON_RULE = "canary-comparison"


def shift_traffic(step: ShiftTraffic, ctx: StepContext) -> dict[str, Any]:
    """Set the weights and check the listener reads them back (idempotent on resume)."""
    listener = ctx.ports.traffic.set_weights(step.listener, step.weights())
    got = dict(listener.forwards).get(step.target_group, 0)
    if got != step.percent:
        raise DeploymentError(
            f"{step.listener} reads back {listener.forwards} after shifting {step.percent}% "
            f"to {step.target_group}",
            hint=f"`deployops health` shows where {step.listener} forwards",
        )
    ctx.event(
        "traffic.shifted",
        f"{step.percent}% of {step.listener} on {step.target_group}",
        data={"percent": step.percent, "forwards": [list(f) for f in listener.forwards]},
    )
    return {
        "percent": step.percent,
        "forwards": [list(f) for f in listener.forwards],
        "shifted_at": ctx.clock.now().isoformat(),
    }


class BakeHandler:
    """Handles ``Bake`` steps: the rollback rules through the deployment's ``Observe``
    handler (frozen into the plan), then the comparison of the two colours over the step's
    window (``rollback.analysis``, frozen too)."""

    def __init__(self, observe: ObserveHandler) -> None:
        self._observe = observe

    def __call__(self, step: Bake, ctx: StepContext) -> dict[str, Any]:
        since = ctx.clock.now()
        # scipy's statistics take seconds to import on a busy machine: load them while the
        # step bakes (mostly asleep), not after it, when the verdict is due.
        threading.Thread(
            target=importlib.import_module, args=("scipy.stats",), daemon=True, name="scipy"
        ).start()
        ctx.progress(
            f"baking {step.target_group} at {step.percent}% for {step.window_s:g}s",
            step.window_s,
            stage="bake",
            percent=step.percent,
        )
        observed = self._observe(step.observe(), ctx)
        compared = self._compare(step, ctx, since)
        ctx.event(
            "bake.passed",
            f"{step.target_group} at {step.percent}%: {compared['verdict']} against "
            f"{step.baseline_target_group}; rules: {observed.get('judgement', 'observed')}",
            data={"percent": step.percent, "verdict": compared["verdict"]},
        )
        return {"percent": step.percent, "rules": observed, "comparison": compared}

    # ------------------------------------------------------------------ the comparison
    def _compare(self, step: Bake, ctx: StepContext, since: datetime) -> dict[str, Any]:
        rb = frozen_rollback(ctx.settings)
        analysis = rb.analysis
        policy, notes = _policy_for(analysis.judge_policy(), ctx)
        new, old = step.target_group, step.baseline_target_group
        need = max((m.min_samples for m in policy.metrics), default=0)
        # No verdict without evidence: the window lasts until each colour served the fewest
        # requests a metric needs, at most rollback.insufficient_data.max_extension longer.
        limit = ctx.clock.monotonic() + rb.insufficient_data.max_extension
        last_line = -PROGRESS_LINE_EVERY_S
        while True:
            now = ctx.clock.now()
            served = {tg: _requests(ctx, tg, since, now) for tg in (new, old)}
            left = limit - ctx.clock.monotonic()
            if min(served.values()) >= need or left <= 0:
                break
            mono = ctx.clock.monotonic()
            line = mono - last_line >= PROGRESS_LINE_EVERY_S
            last_line = mono if line else last_line
            ctx.progress(
                f"comparing {new} with {old}: {served[new]} and {served[old]} requests so far, "
                f"{need} each needed",
                left,
                stage="compare",
                percent=step.percent,
                line=line,
            )
            ctx.clock.sleep(min(step.interval_s, left))
        period = max(1, round(rb.period))
        rows: dict[str, list[Any]] = {}
        for tg, role in ((new, "canary"), (old, "baseline")):
            windows = measure.read_windows(
                ctx.ports.metrics, scope=tg, start=since, end=now, period_s=period, gauges=()
            )
            rows[role] = measure.records(
                windows,
                deployment_id=ctx.op.id,
                environment=ctx.op.environment,
                service=ctx.op.target,
                scope=tg,
                role=role,
                source=f"bake {step.percent}%",
            )
        ctx.store.add_measurements([*rows["canary"], *rows["baseline"]])
        judgement = judge(
            measure.colour_window(rows["baseline"]), measure.colour_window(rows["canary"]), policy
        )
        marginal = judgement.verdict is JudgeVerdict.MARGINAL
        hold = marginal and analysis.on_marginal == "hold"
        window = {
            "from": since.isoformat(),
            "to": now.isoformat(),
            "percent": step.percent,
            "canary": new,
            "baseline": old,
            "requests": served,
            "notes": notes,
        }
        source = f"step at {step.percent}%"
        rec = record_judgement(
            ctx.store,
            ctx.clock,
            deployment_id=ctx.op.id,
            environment=ctx.op.environment,
            service=ctx.op.target,
            source=source,
            judgement=judgement,
            window=window,
            held=hold,
        )
        out = {
            "verdict": judgement.verdict.value,
            "score": judgement.score,
            "reason": judgement.reason,
            "judgement_id": rec.id,
            "window": window,
        }
        if judgement.verdict is JudgeVerdict.FAIL:
            self._fail(step, ctx, judgement, out, f"failed its comparison with {old}")
        if hold:
            out["decision"] = self._hold(step, ctx, judgement, out, analysis.decision_timeout)
        elif marginal:
            ctx.event(
                "bake.marginal",
                f"{new} at {step.percent}%: marginal ({judgement.reason}); continuing "
                "(rollback.analysis.on_marginal: continue)",
                level="warning",
            )
        return out

    def _hold(
        self,
        step: Bake,
        ctx: StepContext,
        judgement: Judgement,
        out: dict[str, Any],
        timeout_s: float,
    ) -> str:
        """A marginal step waits for ``deployops decide``; a rollback or the timeout fails
        the step."""
        dep = ctx.op.id
        ctx.send(
            Notice(
                severity="warning",
                kind="decision",
                title=f"{ctx.op.target} {ctx.op.detail.get('version', '')}: held at "
                f"{step.percent}% for a decision",
                text=f"{judgement.reason}. Decide with `deployops decide {dep} --continue` or "
                f"`--rollback` within {timeout_s:g}s (no decision rolls back).",
                dedup_key=f"{dep}:held:{step.percent}",
                fields={**operation_fields(ctx), "rule": COMPARISON_RULE, "action": "hold"},
            )
        )
        ctx.progress(
            f"held at {step.percent}%: marginal comparison; waiting for "
            f"`deployops decide {dep} --continue | --rollback`",
            timeout_s,
            stage="hold",
            percent=step.percent,
            line=True,
        )
        outcome = wait_for_decision(ctx.store, ctx.clock, dep, timeout_s=timeout_s)
        if outcome != "continue":
            why = "rolled back by decision" if outcome == "rollback" else "no decision in time"
            self._fail(step, ctx, judgement, out, f"was held on a marginal comparison: {why}")
        ctx.event(
            "bake.continued", f"{step.target_group} at {step.percent}%: continued by decision"
        )
        return outcome

    def _fail(
        self, step: Bake, ctx: StepContext, judgement: Judgement, out: dict[str, Any], what: str
    ) -> None:
        """Record the decision (sent after traffic is back on the previous colour) and fail
        the step; the failure handler moves the new colour's share to 0 % first."""
        failed = "; ".join(m.reason for m in judgement.metrics if m.outcome is MetricOutcome.FAIL)
        verdict = Verdict(
            action=Action.ROLLBACK,
            rule=COMPARISON_RULE,
            reason=f"{step.target_group} at {step.percent}% {what}: {judgement.reason}"
            + (f" ({failed})" if failed else ""),
            evidence={
                "scope": step.target_group,
                "baseline_scope": step.baseline_target_group,
                "percent": step.percent,
                "caused_by_release": True,
                "comparison": {**judgement.to_dict(), "judgement_id": out["judgement_id"]},
                "window": out["window"],
            },
        )
        ctx.state[ROLLBACK_VERDICT] = verdict
        notice = decide(ctx, verdict, send=False)
        if notice is not None:
            ctx.pending.append(notice)
        raise DeploymentError(verdict.reason)


def _policy_for(policy: JudgePolicy, ctx: StepContext) -> tuple[JudgePolicy, list[str]]:
    """The policy this platform can judge: without a latency distribution from the metric
    source (CloudWatch keeps percentiles only) the latency metrics are left to the rollback
    rules' percentile thresholds, and the judgement says so."""
    if isinstance(ctx.ports.metrics, LatencySketches):
        return policy, []
    latency = (JudgeMetric.LATENCY, JudgeMetric.LATENCY_SPREAD)
    kept = tuple(m for m in policy.metrics if m.metric not in latency)
    if len(kept) == len(policy.metrics):
        return policy, []
    source = getattr(ctx.ports.metrics, "name", "the metric source")
    return replace(policy, metrics=kept), [
        f"latency not compared: {source} keeps no latency distribution (the rollback "
        "rules judge its percentiles)"
    ]


def _requests(ctx: StepContext, scope: str, start: datetime, end: datetime) -> int:
    """Requests ``scope`` served in ``[start, end)`` (0 when the source cannot say)."""
    span = max(1.0, (end - start).total_seconds())
    m = ctx.ports.metrics.query(
        MetricQuery(
            metric=MetricName.REQUEST_COUNT,
            scope=scope,
            statistic=Statistic.SUM,
            start=start,
            end=end,  # the same window the comparison then reads
            period_s=int(span) + 1,
        )
    )
    if not m.ok:
        return 0
    return int(sum(d.value for d in m.datapoints))
