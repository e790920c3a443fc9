"""The ``Observe`` step: watch the new version for the stability window (DEP-3) under the
rollback rules (RB-1), with the observer built from the settings frozen into the plan.

The first evaluation comes one sample interval after the switch (RB-2: within 30 s of the
first anomalous sample). A verdict that still needs time (an escalation, a scale-out being
judged) extends the window, at most by :data:`MAX_OBSERVE_HOLD_S`. A rollback verdict fails the
step; the operation's failure handler (:mod:`deployops.engine.recovery`) flips traffic back.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from deployops.config.rollback import InsufficientDataSettings
from deployops.domain.backtest import period_start
from deployops.domain.names import prod_listener, test_listener
from deployops.domain.plan import Observe
from deployops.domain.policy import Action
from deployops.engine.events import Notice
from deployops.engine.observe import measure
from deployops.engine.observe.health import (
    HealthObserver,
    Observer,
    ObserverFactory,
    ScaleAware,
    Verdict,
)
from deployops.engine.operation import StepContext
from deployops.errors import DeploymentError
from deployops.store import DecisionRecord

__all__ = [
    "MAX_OBSERVE_HOLD_S",
    "Judging",
    "ObserveHandler",
    "decide",
    "judged_summary",
    "operation_fields",
    "rules_line",
]

# The longest an observation may run past its stability window while an escalation or a
# scale-out waits to be judged (a flapping metric must not hold a deploy forever).
MAX_OBSERVE_HOLD_S = 3600.0

# A progress line (text and -o json) at most this often while observing.
PROGRESS_LINE_EVERY_S = 3.0

# The key of the verdict that failed the step, in ``StepContext.state``.
ROLLBACK_VERDICT = "rollback_verdict"


def operation_fields(ctx: StepContext) -> dict[str, str]:
    """The fields every notice about a deployment carries."""
    d = ctx.op.detail
    return {
        "deployment": ctx.op.id,
        "environment": ctx.op.environment,
        "service": ctx.op.target,
        "version": str(d.get("version", "")),
        "previous": str(d.get("previous_version", "")) or "-",
    }


def decide(ctx: StepContext, verdict: Verdict, *, send: bool = True) -> Notice | None:
    """Store a decision with its evidence (RB-2) and tell stakeholders; with ``send=False``
    the notice is returned to be sent later (after a rollback's flip)."""
    ctx.store.add_decision(
        DecisionRecord(
            ts=ctx.clock.now(),
            deployment_id=ctx.op.id,
            rule=verdict.rule or "observe",
            verdict=verdict.reason,
            action=verdict.action.value,
            evidence=verdict.evidence,
        )
    )
    ctx.event(
        "decision",
        f"{verdict.rule}: {verdict.reason} -> {verdict.action}",
        level="warning",
        data={
            "action": verdict.action.value,
            "rule": verdict.rule,
            "caused_by_release": verdict.evidence.get("caused_by_release"),
        },
    )
    if verdict.action is Action.NONE:
        return None
    version = str(ctx.op.detail.get("version", ""))
    blamed = verdict.evidence.get("caused_by_release")
    title = f"{ctx.op.target} {version}: {verdict.rule} -> {verdict.action}"
    if verdict.action is Action.NOTIFY and blamed is False and verdict.evidence.get("baseline"):
        title = f"{ctx.op.target} {version}: {verdict.rule} breached, not caused by this release"
    notice = Notice(
        severity="critical" if verdict.action is Action.ROLLBACK else "warning",
        kind="decision",
        title=title,
        text=verdict.reason,
        dedup_key=f"{ctx.op.id}:{verdict.rule}",
        fields={**operation_fields(ctx), "rule": verdict.rule, "action": verdict.action.value},
    )
    if send:
        ctx.send(notice)
        return None
    return notice


@runtime_checkable
class Judging(Protocol):
    """An observer that says which rules it judged on data (the rules observer)."""

    insufficient_data: InsufficientDataSettings

    def judgement(self) -> dict[str, dict[str, Any]]: ...


def rules_line(verdict: Verdict) -> str:
    """Each rule's value against its threshold, or what it lacks to be judged."""
    rules = verdict.evidence.get("rules")
    if not isinstance(rules, dict) or not rules:
        return verdict.reason
    parts: list[str] = []
    for name, note in rules.items():
        value = note.get("value")
        if note.get("judged") and value is not None:
            parts.append(f"{name} {value:.4g} (limit {note['comparison']} {note['threshold']:g})")
        else:
            basis = str(note.get("basis") or note.get("reason") or "not judged")
            parts.append(f"{name} {basis}")
    return "; ".join(parts)


def judged_summary(judgement: dict[str, dict[str, Any]]) -> str:
    """``judged 3 of 5 rules: ...; not judged: ...`` (the observation's last word)."""
    done = [n for n, j in judgement.items() if j["judged"]]
    not_done = [f"{n} ({j['basis']})" for n, j in judgement.items() if not j["judged"]]
    text = f"judged {len(done)} of {len(judgement)} rules"
    if done:
        text += ": " + ", ".join(done)
    if not_done:
        text += "; not judged: " + ", ".join(not_done)
    return text


class _Synthetic:
    """Bounded synthetic requests through one listener while the rules wait for data: enough
    per second for each unjudged rule's minimum per period, at most ``budget`` in all."""

    def __init__(self, url: str, *, rate_per_s: float, budget: int, timeout_s: float) -> None:
        self.url = url
        self.rate_per_s = rate_per_s
        self.budget = budget
        self.timeout_s = timeout_s
        self.sent = 0
        self.answered = 0
        self.failed = 0
        self._owed = 0.0

    def send(self, ctx: StepContext, seconds: float) -> None:
        self._owed += self.rate_per_s * seconds
        n = min(int(self._owed), self.budget - self.sent)
        if n <= 0:
            return
        self._owed -= n
        prober = ctx.ports.prober
        with ThreadPoolExecutor(max_workers=min(8, n)) as pool:
            results = list(
                pool.map(lambda _: prober.get(self.url, timeout_s=self.timeout_s), range(n))
            )
        self.sent += n
        self.answered += sum(1 for r in results if r.status)
        self.failed += sum(1 for r in results if r.status >= 500 or not r.status)

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "sent": self.sent,
            "answered": self.answered,
            "failed": self.failed,
        }


def _synthetic_for(
    ctx: StepContext,
    step: Observe,
    listener: str,
    judgement: dict[str, dict[str, Any]],
    settings: InsufficientDataSettings,
) -> tuple[_Synthetic, float] | None:
    """The synthetic traffic for the unjudged rules through ``listener`` and how long it must
    run (their longest window and one period more), or ``None`` if that listener does not
    forward to the new version."""
    try:
        lst = ctx.ports.traffic.describe_listener(listener)
    except Exception:  # noqa: BLE001 - a listener that does not exist sends nothing
        return None
    if lst.target_group != step.target_group:
        return None
    pending = [j for j in judgement.values() if not j["judged"]]
    rate = max(
        (math.ceil(max(j["min_samples"], 1) / max(j["period_s"], 1)) + 1 for j in pending),
        default=1,
    )
    duration = max((j["lookback_s"] + j["period_s"] for j in pending), default=step.interval_s)
    url = f"http://{lst.host}:{lst.port}{settings.synthetic_path}"
    synth = _Synthetic(
        url,
        rate_per_s=float(rate),
        budget=settings.synthetic_max_requests,
        timeout_s=settings.synthetic_timeout,
    )
    return synth, float(duration)


class ObserveHandler:
    """Handles ``Observe`` steps; ``factory`` builds each deployment's observer from the
    plan's frozen settings (without one, the checklist's :class:`HealthObserver`)."""

    def __init__(self, factory: ObserverFactory | Observer | None = None) -> None:
        self._factory = factory

    def observer_for(self, ctx: StepContext) -> Observer:
        if self._factory is None:
            return HealthObserver(compute=ctx.ports.compute, metrics=ctx.ports.metrics)
        if isinstance(self._factory, Observer):
            return self._factory
        return self._factory(ctx.op.target, ctx.plan.settings)

    def __call__(self, step: Observe, ctx: StepContext) -> dict[str, Any]:
        observer = self.observer_for(ctx)
        clock = ctx.clock
        since = clock.now()
        began = clock.monotonic()
        base_end = began + step.window_s
        limit = base_end + MAX_OBSERVE_HOLD_S
        end = base_end
        checks = 0
        told: dict[str, tuple[Action, str]] = {}  # rule -> (action, verdict) last recorded
        decisions = 0
        last_line = -math.inf
        # Rules without enough data: what was done about it (RB-1: never a silent pass).
        stage = ""  # "" | extend | synthetic via test | synthetic via production
        synthetic: _Synthetic | None = None
        sent: list[dict[str, Any]] = []
        while True:
            left = end - clock.monotonic()
            if left <= 0:
                if not isinstance(observer, Judging):
                    break
                more = self._not_judged(ctx, step, observer, stage, limit)
                if synthetic is not None:
                    sent.append(synthetic.to_json())
                    synthetic = None
                if more is None:
                    break
                stage, extra, synthetic = more
                end = min(limit, clock.monotonic() + extra)
                continue
            slice_s = min(step.interval_s, left)
            if synthetic is not None:
                t0 = clock.monotonic()
                synthetic.send(ctx, slice_s)
                slice_s = max(0.0, slice_s - (clock.monotonic() - t0))
            clock.sleep(slice_s)
            verdict = observer.evaluate(step, since=since, now=clock.now())
            checks += 1
            mono = clock.monotonic()
            new_end = max(base_end, min(limit, mono + verdict.hold_s))
            if verdict.hold_s > 0 and new_end > base_end and end <= base_end:
                ctx.event(
                    "observe.extended",
                    f"keeping {step.target_group} under observation past the "
                    f"{step.window_s:g}s window: {verdict.reason}",
                    level="warning",
                    data={"hold_s": round(verdict.hold_s, 1)},
                )
            # Never shorten a hold already granted: a rule whose newest period is still being
            # collected must not lose the time it was given one sample ago.
            end = max(end, new_end)
            remaining = max(0.0, end - clock.monotonic())
            line = mono - last_line >= PROGRESS_LINE_EVERY_S
            if line:
                last_line = mono
            ctx.progress(
                f"observing {step.target_group}: {rules_line(verdict)}",
                remaining,
                stage="observe",
                line=line,
                rules=verdict.evidence.get("rules", {}),
                **({"insufficient_data": stage} if stage else {}),
            )
            if verdict.action is Action.ROLLBACK:
                ctx.state[ROLLBACK_VERDICT] = verdict
                notice = decide(ctx, verdict, send=False)
                if notice is not None:
                    ctx.pending.append(notice)
                record_windows(ctx, step, observer, since=since)
                judged = ""
                if isinstance(observer, Judging):
                    j = observer.judgement()
                    done = sum(1 for r in j.values() if r["judged"])
                    judged = f" (rules judged: {done} of {len(j)})"
                raise DeploymentError(
                    f"{step.target_group} broke a rule while observed: {verdict.reason}{judged}"
                )
            if verdict.action is Action.NONE:
                continue
            key = (verdict.action, str(verdict.evidence.get("verdict", "")))
            if verdict.action is Action.SCALE_OUT:
                decide(ctx, verdict)
                decisions += 1
                _scale_out(ctx, step, verdict, observer)
            elif told.get(verdict.rule) != key:
                # A notice is recorded once per change of state, not once per sample.
                decide(ctx, verdict)
                decisions += 1
            told[verdict.rule] = key
        result: dict[str, Any] = {
            "observed_s": round(clock.monotonic() - began, 3),
            "checks": checks,
            "extended_s": round(max(0.0, end - base_end), 3),
            "decisions": decisions,
            "measurements": record_windows(ctx, step, observer, since=since),
        }
        if isinstance(observer, Judging):
            judgement = observer.judgement()
            summary = judged_summary(judgement)
            result["rules_judged"] = sum(1 for j in judgement.values() if j["judged"])
            result["rules_total"] = len(judgement)
            result["judged"] = {n: j["basis"] for n, j in judgement.items()}
            result["judgement"] = summary
            if stage or sent:
                result["insufficient_data"] = {"stage": stage, "synthetic": sent}
            ctx.event(
                "observe.judged",
                f"{step.target_group}: {summary}",
                level="info" if result["rules_judged"] == len(judgement) else "warning",
                data={"judged": result["judged"], "rules_judged": result["rules_judged"]},
            )
        return result

    def _not_judged(
        self, ctx: StepContext, step: Observe, observer: Judging, stage: str, limit: float
    ) -> tuple[str, float, _Synthetic | None] | None:
        """The observation is over: with rules still unjudged, the configured action's next
        stage (and for how long), ``None`` to end; fails the step when nothing is left."""
        judgement = observer.judgement()
        pending = {n: j for n, j in judgement.items() if not j["judged"]}
        if not pending:
            return None
        settings = observer.insufficient_data
        what = ", ".join(f"{n} ({j['basis']})" for n, j in pending.items())
        room = max(0.0, limit - ctx.clock.monotonic())
        if settings.action == "accept":
            ctx.event(
                "observe.not_judged",
                f"{step.target_group}: accepted without judging {what} "
                "(rollback.insufficient_data.action: accept)",
                level="warning",
            )
            return None
        if settings.action == "extend" and not stage and settings.max_extension > 0:
            ctx.event(
                "observe.extended",
                f"not judged yet: {what}; observing up to {settings.max_extension:g}s longer "
                "for real traffic",
                level="warning",
                data={"insufficient_data": "extend"},
            )
            return "extend", min(room, settings.max_extension), None
        if settings.action == "synthetic":
            order = []
            if not stage:
                order = [("synthetic via test", test_listener(ctx.op.target))]
            if stage in ("", "synthetic via test"):
                order.append(("synthetic via production", prod_listener(ctx.op.target)))
            for name, listener in order:
                made = _synthetic_for(ctx, step, listener, judgement, settings)
                if made is None:
                    continue
                synth, duration = made
                ctx.event(
                    "observe.synthetic",
                    f"not judged yet: {what}; sending up to {synth.budget} synthetic requests "
                    f"({synth.rate_per_s:g}/s for {duration:g}s) to {synth.url}",
                    level="warning",
                    data={"insufficient_data": name, "url": synth.url},
                )
                return name, min(room, duration), synth
        raise DeploymentError(
            f"{step.target_group} was not judged: {what}; a deployment without evidence is not "
            f"a success (rollback.insufficient_data.action: {settings.action})",
            hint="send traffic while it is observed, lower rollback.min_requests, or set "
            "rollback.insufficient_data.action (synthetic, extend, fail, accept) in "
            "deployops.yaml",
        )


def record_windows(ctx: StepContext, step: Observe, observer: Observer, *, since: datetime) -> int:
    """Store the windows this observation read (the new colour from the switch on, the
    previous one from a window before it) so every observed deployment keeps its raw
    measurements. Never fails the observation: a metric source that cannot answer is an
    event, not a rollback. Returns the number of windows stored."""
    policy = getattr(observer, "policy", None)
    periods = [rr.rule.period_s for rr in getattr(policy, "rules", ())]
    period = min(periods) if periods else 60
    now = ctx.clock.now()
    # On the period grid the metric sources write on (and the rules judge on).
    start = period_start(since, period)
    before = period_start(since - timedelta(seconds=max(step.window_s, period)), period)
    scopes = [(step.target_group, "new", start)]
    if step.baseline_target_group and step.baseline_target_group != step.target_group:
        scopes.append((step.baseline_target_group, "previous", before))
    # The previous colour up to the switch only when it serves nothing after it: its own
    # windows after the switch are stored when it has traffic (e.g. a canary's baseline).
    rows = []
    try:
        for scope, role, start in scopes:
            windows = measure.read_windows(
                ctx.ports.metrics, scope=scope, start=start, end=now, period_s=period
            )
            rows += measure.records(
                windows,
                deployment_id=ctx.op.id,
                environment=ctx.op.environment,
                service=ctx.op.target,
                scope=scope,
                role=role,
                source="observe",
            )
        return ctx.store.add_measurements(rows)
    except Exception as exc:  # noqa: BLE001 - keeping evidence must not decide a deploy
        ctx.event(
            "measurements.not_kept",
            f"the observed windows of {step.target_group} were not stored: {exc}",
            level="warning",
        )
        return 0


def _scale_out(ctx: StepContext, step: Observe, verdict: Verdict, observer: Observer) -> None:
    """Raise the new service's desired count within the policy's limits (RB-1 memory and
    CPU rows); no room left is reported to the observer, which then decides (rollback for
    memory, a notice for CPU)."""
    max_replicas, add = observer.scale_limits() if isinstance(observer, ScaleAware) else (10, 2)
    compute = ctx.ports.compute
    svc = compute.describe_service(step.service)
    desired = svc.desired if svc is not None else 0
    now = ctx.clock.now()
    if desired >= max_replicas:
        detail = f"{step.service} already runs {desired} of at most {max_replicas} replicas"
        ctx.event("scale_out.no_room", detail, level="warning")
        if isinstance(observer, ScaleAware):
            observer.scaled_out(verdict.rule, at=now, desired=desired, no_room=True, detail=detail)
        return
    target = min(max_replicas, desired + add)
    compute.update_service(step.service, desired_count=target)
    detail = f"scaled {step.service} out from {desired} to {target} replicas ({verdict.rule})"
    ctx.event(
        "scale_out",
        detail,
        level="warning",
        data={"from": desired, "to": target, "rule": verdict.rule},
    )
    if isinstance(observer, ScaleAware):
        observer.scaled_out(verdict.rule, at=now, desired=target, no_room=False, detail=detail)
