"""The watch after the switch: the live version stays under the rollback rules (RB-1) after its
stability window, for a bake period (``rollback.watch_after_switch``; by default until the old
target group is deleted, DEP-4's 24 h).

When a deploy succeeds, :func:`begin_watch` records the watch in the operation's ``detail``
(``watch``: state, since, until), so the set of watched deployments is in the store: it survives
a controller restart and is shared by several controllers (only the lease holder ticks). The
controller's ``watch`` loop (:class:`AfterSwitchWatch`) judges each watched deployment every
sample interval with the observer built from the settings frozen into its plan, through the
same metric source and the same :func:`~deployops.engine.observe.watch.decide` as the
stability window. A rule that says roll back:

1. stores the intent (``watch.state: rolling_back``, the breach) before anything moves, so a
   controller that dies mid-way finishes this rollback and never starts a second one;
2. records the decision with its evidence and notifies (:func:`decide`);
3. plans and runs the rollback like ``deployops rollback`` does
   (:func:`~deployops.engine.planning.rollback.plan_rollback`, ``run_rollback``): blue was
   scaled to 0 after the window, so the previous task definition is started again, waited
   healthy, smoke-checked and switched to, under the service's lock, resumable;
4. when that rollback succeeds (in its own success hook, so ``deployops resume`` finishes it
   too), marks the deployment ``rolled_back``, verifies, writes the incident report and sends
   the rollback notice, as a rollback inside the window does (:mod:`deployops.engine.recovery`).

While another operation holds the service's lock the watch waits, and says so. A newer
deployment of the service supersedes the watch; at the end of the period it ends clean.
``deployops deployments show ID`` reads the state back (:func:`watch_view`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from deployops.clock import Clock
from deployops.domain.names import lock_key
from deployops.domain.plan import Observe, Plan, ScheduleDeleteTargetGroup, SwitchListener
from deployops.domain.policy import Action
from deployops.engine.events import Notice
from deployops.engine.incident import measure_impact, verify_rollback, write_incident_report
from deployops.engine.observe.health import Observer, Verdict
from deployops.engine.observe.rules_observer import RulesObserver
from deployops.engine.observe.watch import (
    MAX_OBSERVE_HOLD_S,
    Judging,
    _scale_out,
    decide,
    judged_summary,
    operation_fields,
    record_windows,
)
from deployops.engine.operation import Env, OperationKind, StepContext
from deployops.engine.planning.deploy import frozen_rollback
from deployops.engine.planning.rollback import Deployer as RollbackDeployer
from deployops.engine.planning.rollback import RollbackPlan, plan_rollback, run_rollback
from deployops.errors import ConfigError, DeployopsError, LockHeldError
from deployops.store import DecisionRecord, DeploymentRecord, OperationRecord, StateStore
from deployops.store.queries import (
    ACTIVE,
    ROLLING_BACK,
    WATCH,
    WATCHING,
    watch_of,
    watch_view,
)
from deployops.store.queries import parse_time as _iso

__all__ = [
    "ACTIVE",
    "WATCH",
    "AfterSwitchWatch",
    "begin_watch",
    "finish_rolled_back",
    "watch_of",
    "watch_view",
]

log = logging.getLogger(__name__)

# How ended watches end: clean | rolled_back | superseded | rollback_failed | blocked | off

# A plan without an Observe step (no stability window) is judged this often.
DEFAULT_INTERVAL_S = 10.0
# DEP-4's default retention, for a plan that schedules no target-group deletion (rolling).
DEFAULT_RETENTION_S = 86400.0


def _update(store: StateStore, clock: Clock, op_id: str, **changes: Any) -> dict[str, Any]:
    """Merge ``changes`` into the stored watch of ``op_id``; returns the new watch."""
    current = store.get_operation(op_id)
    w = {**(watch_of(current) if current else {}), **changes}
    store.update_operation(op_id, detail={WATCH: w}, updated_at=clock.now())
    return w


def _context(env: Env, op: OperationRecord) -> StepContext:
    """A step context over a finished deployment, for the engine's shared record-keeping
    (decisions, events, notices, verification, the incident report)."""
    kind = OperationKind(name=op.kind, id_prefix="dep", events="deploy")
    return StepContext(env=env, kind=kind, op=op, plan=Plan.from_record(op.plan))


def _active_watches(
    store: StateStore, *, environment: str, target: str | None = None
) -> list[OperationRecord]:
    # Only the newest deployments can be under watch: each one that goes live ends the watch
    # of the one before it.
    ops = store.list_operations(
        kinds=("deploy",), environment=environment, target=target, status=["succeeded"], limit=50
    )
    return [op for op in ops if watch_of(op).get("state") in ACTIVE]


def _fmt_s(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


# ---------------------------------------------------------------------- start and supersede
def plan_watch(ctx: StepContext) -> dict[str, Any]:
    """The watch a deployment that just succeeded gets, from the settings frozen into its plan:
    ``watching`` until a time, or ``off`` with the reason."""
    now = ctx.clock.now()
    rb = frozen_rollback(ctx.settings)
    d = ctx.op.detail
    off = {"state": "off", "since": now.isoformat(), "ended_at": now.isoformat()}
    if not rb.enabled:
        return {**off, "reason": "automatic rollback is off (rollback.enabled: false)"}
    if not d.get("previous_task_definition"):
        return {**off, "reason": f"first deployment of {ctx.op.target}: no earlier version"}
    raw = rb.watch_after_switch
    if raw == "retention":
        retention = next(
            (s for s in ctx.plan.steps if isinstance(s, ScheduleDeleteTargetGroup)), None
        )
        delete_at = _iso(ctx.results.get("delete_at"))
        if delete_at is not None and delete_at > now:
            until = delete_at
        else:
            until = now + timedelta(
                seconds=retention.after_s if retention is not None else DEFAULT_RETENTION_S
            )
        basis = (
            f"until the old target group {retention.target_group} is deleted"
            if retention is not None
            else f"for {_fmt_s(DEFAULT_RETENTION_S)}"
        )
    else:
        period = float(raw)
        if period <= 0:
            return {**off, "reason": "rollback.watch_after_switch is 0"}
        until = now + timedelta(seconds=period)
        basis = f"for {_fmt_s(period)} (rollback.watch_after_switch)"
    return {
        "state": WATCHING,
        "since": now.isoformat(),
        "until": until.isoformat(),
        "period_s": round((until - now).total_seconds(), 3),
        "basis": basis,
    }


def begin_watch(ctx: StepContext) -> None:
    """The success hook of deploys and rollbacks: supersede older watches of the service, finish
    the watch this rollback was started by, and put a deploy that just went live under watch.
    Never raises: the deployment itself already succeeded."""
    try:
        _begin_watch(ctx)
    except DeployopsError as exc:
        ctx.event(
            "watch.failed", f"the watch after the switch failed: {exc.message}", level="error"
        )


def _begin_watch(ctx: StepContext) -> None:
    op = ctx.refresh()
    for other in _active_watches(ctx.store, environment=op.environment, target=op.target):
        if other.id == op.id or other.created_at > op.created_at:
            continue
        state = watch_of(other).get("state")
        if state == ROLLING_BACK and op.kind == "rollback" and op.reverts == other.id:
            finish_rolled_back(ctx.env, other, op)
        elif state == WATCHING:
            _supersede(ctx.env, other, op)
    if op.kind != "deploy":
        return
    w = plan_watch(ctx)
    _update(ctx.store, ctx.clock, op.id, **w)
    if w["state"] == WATCHING:
        ctx.event(
            "watch.started",
            f"{op.target} {op.detail.get('version', '')} stays under the rollback rules "
            f"{w['basis']}, until {w['until']}",
            data={"until": w["until"], "period_s": w["period_s"]},
        )


def _supersede(env: Env, watched: OperationRecord, newer: OperationRecord) -> None:
    version = newer.detail.get("version", "")
    reason = f"superseded by {newer.id} ({newer.kind} of {version})"
    _update(
        env.store,
        env.clock,
        watched.id,
        state="superseded",
        ended_at=env.clock.now().isoformat(),
        reason=reason,
        superseded_by=newer.id,
    )
    _context(env, watched).event("watch.ended", f"watch ended: {reason}")


# ---------------------------------------------------------------------- the rollback's end
def _switch_of(store: StateStore, rollback: OperationRecord) -> dict[str, Any] | None:
    """The rollback's switch of the production listener, shaped like a flip (the incident
    report's "Rollback" line and the impact's end)."""
    for s in store.steps_for(rollback.id):
        if s.name != "SwitchListener" or s.status != "succeeded":
            continue
        ms = (s.finished_at - s.started_at).total_seconds() * 1000 if s.finished_at else 0.0
        return {
            "listener": str(s.params.get("listener", "")),
            "from": str(s.params.get("previous_target_group", "")),
            "to": str(s.params.get("target_group", "")),
            "ms": round(ms, 3),
            "at": str(s.result.get("switched_at") or (s.finished_at or s.started_at).isoformat()),
            "by": rollback.id,
        }
    return None


def _trigger(store: StateStore, watched_id: str, w: Mapping[str, Any]) -> Verdict | None:
    """The stored decision that started the watch's rollback, as the verdict it was."""
    since = _iso((w.get("breach") or {}).get("at"))
    found: DecisionRecord | None = None
    for d in store.decisions(deployment_id=watched_id):
        if d.action == Action.ROLLBACK.value and (since is None or d.ts >= since):
            found = d
    if found is None:
        return None
    return Verdict(
        action=Action.ROLLBACK, rule=found.rule, reason=found.verdict, evidence=found.evidence
    )


def finish_rolled_back(env: Env, watched: OperationRecord, rollback: OperationRecord) -> str:
    """The watch's rollback succeeded: record it on the deployment it reverted, verify, write
    the incident report and tell people, as after a rollback inside the window. Returns the
    report's path ("" when it could not be written)."""
    store, clock = env.store, env.clock
    w = watch_of(watched)
    ctx = _context(env, watched)
    rec = DeploymentRecord.from_operation(watched)
    back = DeploymentRecord.from_operation(rollback)
    breach = w.get("breach") or {}
    trigger = _trigger(store, watched.id, w)
    flip = _switch_of(store, rollback)
    error = (
        f"rolled back during the watch after the switch by {back.id} ({back.strategy}): "
        f"{breach.get('rule', '')}: {breach.get('reason', '')}"
    )
    store.update_operation(watched.id, status="rolled_back", error=error, updated_at=clock.now())
    ctx.refresh()
    ctx.event("deploy.rolled_back", error, level="error", data={"rollback_id": back.id})
    impact: dict[str, Any] | None = None
    try:
        impact = measure_impact(ctx, rec, flip)
    except DeployopsError:
        impact = None
    path = ""
    try:
        verification = verify_rollback(ctx, rec, target_group=back.target_group, wait_s=0.0)
        path = str(
            write_incident_report(
                ctx,
                rec,
                rollback_id=back.id,
                flip=flip,
                verification=verification,
                trigger=trigger,
                error=error,
                impact=impact,
            )
        )
    except DeployopsError as exc:
        ctx.event(
            "incident.failed",
            f"the rollback happened, but its report failed: {exc.message}",
            level="error",
        )
    now = clock.now()
    _update(
        store,
        clock,
        watched.id,
        state="rolled_back",
        ended_at=now.isoformat(),
        rolled_back_at=(flip or {}).get("at") or now.isoformat(),
        rollback_id=back.id,
        reason=f"{breach.get('rule', '')}: {breach.get('reason', '')}",
        report=path,
    )
    ctx.event(
        "watch.ended",
        f"watch ended: rolled back to {back.version} by {back.id}",
        data={"rollback_id": back.id, "report": path},
    )
    ctx.send(
        Notice(
            severity="critical",
            kind="deployment.rolled_back",
            title=f"{rec.service} {rec.version} rolled back in {rec.environment}",
            text=error + (f" Incident report: {path}" if path else ""),
            dedup_key=rec.id,
            fields={**operation_fields(ctx), "failed_step": "watch after the switch"},
        )
    )
    return path


def _finish_failed(
    env: Env, watched: OperationRecord, rollback: OperationRecord | None, why: str, state: str
) -> None:
    """The watch's rollback could not be done: say so loudly, never try again by itself."""
    ctx = _context(env, watched)
    live = ""
    try:
        from deployops.domain.names import prod_listener

        live = env.ports.traffic.describe_listener(prod_listener(watched.target)).target_group
    except DeployopsError:
        live = "unknown"
    ref = rollback.id if rollback is not None else watched.id
    text = f"{why}; production is on {live or 'nothing'}"
    _update(
        env.store,
        env.clock,
        watched.id,
        state=state,
        ended_at=env.clock.now().isoformat(),
        reason=text,
        **({"rollback_id": rollback.id} if rollback is not None else {}),
    )
    ctx.event("watch.ended", f"watch ended: {text}", level="error")
    version = watched.detail.get("version", "")
    ctx.send(
        Notice(
            severity="critical",
            kind=f"watch.{state}",
            title=f"{watched.target} {version}: automatic rollback not done in "
            f"{watched.environment}",
            text=f"{text}. Roll back by hand: `deployops rollback {watched.id}` "
            f"(`deployops deployments show {ref}` has the steps)",
            dedup_key=f"{watched.id}:watch",
            fields={**operation_fields(ctx), "failed_step": "watch after the switch"},
        )
    )


# ---------------------------------------------------------------------- the controller loop
class WatchDeployer(RollbackDeployer, Protocol):
    """What the watch needs of :class:`deployops.engine.deploy.Deployer`."""

    env: Env


@dataclass
class _Tracked:
    """What the controller keeps in memory about one watched deployment (rebuilt from the
    store after a restart)."""

    observer: Observer
    step: Observe
    since: datetime
    next_at: float = 0.0  # monotonic
    told: dict[str, tuple[Action, str]] = field(default_factory=dict)
    waiting: str = ""
    hold_s: float = 0.0
    extended: bool = False
    checks: int = 0


ObserverFor = Callable[[OperationRecord, Plan, Env], Observer]


def rules_observer(op: OperationRecord, plan: Plan, env: Env) -> Observer:
    """The RB-1 rules frozen into the deployment's plan, over the platform's metric source."""
    _ = op
    return RulesObserver.from_settings(
        compute=env.ports.compute,
        metrics=env.ports.metrics,
        settings=frozen_rollback(plan.settings),
    )


def _spawn_thread(fn: Callable[[], None]) -> None:
    threading.Thread(target=fn, name="watch-rollback", daemon=True).start()


@dataclass
class AfterSwitchWatch:
    """The controller's ``watch`` loop: judge every watched deployment of the environment,
    roll back the one that breaks a rule, end the watches whose period is over.

    ``deployer`` builds the environment's deployer (once; kept). ``spawn`` runs a rollback
    (default: a background thread, so alarms and scaling go on meanwhile; tests on a virtual
    clock run it inline)."""

    store: StateStore
    clock: Clock
    environment: str
    worker: str
    deployer: Callable[[], WatchDeployer]
    owner_alive: Callable[[str], bool] = lambda _owner: True
    observer: ObserverFor = rules_observer
    spawn: Callable[[Callable[[], None]], object] = _spawn_thread
    every_s: float = 1.0  # how often the loop looks; each deployment has its own interval

    def __post_init__(self) -> None:
        self._tracked: dict[str, _Tracked] = {}
        self._running: set[str] = set()
        self._guard = threading.Lock()
        self._deployer: WatchDeployer | None = None

    @property
    def env(self) -> Env:
        return self._get_deployer().env

    def _get_deployer(self) -> WatchDeployer:
        if self._deployer is None:
            self._deployer = self.deployer()
        return self._deployer

    def watched(self) -> list[OperationRecord]:
        """The deployments of the environment still under watch (from the store)."""
        return _active_watches(self.store, environment=self.environment)

    def tick(self) -> None:
        active = self.watched()
        for op in active:
            try:
                self._one(op)
            except DeployopsError as exc:
                _context(self.env, op).event(
                    "watch.error", f"the watch could not judge: {exc.message}", level="warning"
                )
        ids = {op.id for op in active}
        for gone in set(self._tracked) - ids:
            del self._tracked[gone]

    # ------------------------------------------------------------------ one deployment
    def _one(self, op: OperationRecord) -> None:
        w = watch_of(op)
        if w.get("state") == ROLLING_BACK:
            self._settle(op)
            return
        newer = self._newer(op)
        if newer is not None:
            _supersede(self.env, op, newer)
            return
        tracked = self._tracked.get(op.id) or self._track(op, w)
        held = self.store.get_lock(lock_key(op.environment, op.target))
        if held is not None:
            why = f"{held.owner}: {held.reason}"
            if tracked.waiting != why:
                tracked.waiting = why
                _context(self.env, op).event(
                    "watch.waiting",
                    f"{op.target} is locked by {why}; the watch waits until it is free",
                    level="warning",
                )
            return
        if tracked.waiting:
            tracked.waiting = ""
            _context(self.env, op).event("watch.resumed", f"{op.target} is free; watching again")
        mono = self.clock.monotonic()
        if mono < tracked.next_at:
            return
        tracked.next_at = mono + tracked.step.interval_s
        now = self.clock.now()
        until = _iso(w.get("until")) or now
        if now >= until:
            room = until + timedelta(seconds=MAX_OBSERVE_HOLD_S)
            if tracked.hold_s <= 0 or now >= room:
                self._end_clean(op, w, tracked)
                return
            if not tracked.extended:
                tracked.extended = True
                _context(self.env, op).event(
                    "watch.extended",
                    "the watch period is over, but a breach is building up: judging it "
                    f"(at most {_fmt_s(MAX_OBSERVE_HOLD_S)} longer)",
                    level="warning",
                )
        verdict = tracked.observer.evaluate(tracked.step, since=tracked.since, now=now)
        tracked.checks += 1
        tracked.hold_s = verdict.hold_s
        if verdict.action is Action.NONE:
            return
        ctx = _context(self.env, op)
        if verdict.action is Action.ROLLBACK:
            self._keep_windows(op, w, tracked)
            self._breach(op, ctx, verdict)
            return
        key = (verdict.action, str(verdict.evidence.get("verdict", "")))
        if verdict.action is Action.SCALE_OUT:
            decide(ctx, verdict)
            _scale_out(ctx, tracked.step, verdict, tracked.observer)
        elif tracked.told.get(verdict.rule) != key:
            decide(ctx, verdict)  # once per change of state, not once per sample
        tracked.told[verdict.rule] = key

    def _track(self, op: OperationRecord, w: Mapping[str, Any]) -> _Tracked:
        plan = Plan.from_record(op.plan)
        step = next((s for s in plan.steps if isinstance(s, Observe)), None)
        if step is None:
            step = Observe(
                service=plan.target_group,
                target_group=plan.target_group,
                baseline_target_group=plan.previous_target_group,
                window_s=0.0,
                interval_s=DEFAULT_INTERVAL_S,
                max_error_rate=1.0,
            )
        # The same observation as the window's, continued: judged since the switch (the
        # rules look back over their own windows only).
        switched = next(
            (
                _iso(s.result.get("switched_at"))
                for s in self.store.steps_for(op.id)
                if s.name == SwitchListener.__name__ and s.status == "succeeded"
            ),
            None,
        )
        since = switched or _iso(w.get("since")) or op.created_at
        tracked = _Tracked(observer=self.observer(op, plan, self.env), step=step, since=since)
        self._tracked[op.id] = tracked
        return tracked

    def _newer(self, op: OperationRecord) -> OperationRecord | None:
        """A deployment of the same service that went live after ``op`` (not the watch's own
        rollback, which is settled instead)."""
        for other in self.store.list_operations(
            kinds=("deploy", "rollback"),
            environment=op.environment,
            target=op.target,
            status=["succeeded"],
            limit=5,
        ):
            if other.id != op.id and other.created_at > op.created_at:
                return other
        return None

    def _keep_windows(self, op: OperationRecord, w: Mapping[str, Any], tracked: _Tracked) -> None:
        """Keep the measurements the watch judged (the live colour since the watch began; the
        window's own were kept by its Observe step), as every observation does."""
        since = _iso(w.get("since")) or tracked.since
        record_windows(
            _context(self.env, op),
            replace(tracked.step, baseline_target_group=""),
            tracked.observer,
            since=since,
        )

    def _end_clean(self, op: OperationRecord, w: Mapping[str, Any], tracked: _Tracked) -> None:
        self._keep_windows(op, w, tracked)
        summary = ""
        if isinstance(tracked.observer, Judging):
            summary = judged_summary(tracked.observer.judgement())
        reason = f"no rule called for a rollback {w.get('basis', '')}".strip()
        if summary:
            reason += f"; {summary}"
        _update(
            self.store,
            self.clock,
            op.id,
            state="clean",
            ended_at=self.clock.now().isoformat(),
            reason=reason,
            checks=tracked.checks,
        )
        _context(self.env, op).event("watch.ended", f"watch ended clean: {reason}")
        self._tracked.pop(op.id, None)

    # ------------------------------------------------------------------ rolling back
    def _breach(self, op: OperationRecord, ctx: StepContext, verdict: Verdict) -> None:
        now = self.clock.now()
        # The intent first: a controller that dies from here on finishes this rollback (or
        # resumes it) and never starts a second one.
        _update(
            self.store,
            self.clock,
            op.id,
            state=ROLLING_BACK,
            breach={"rule": verdict.rule, "reason": verdict.reason, "at": now.isoformat()},
        )
        self._tracked.pop(op.id, None)
        decide(ctx, verdict)  # the decision with its evidence, and the notice (RB-2)
        ctx.event(
            "watch.breach",
            f"{verdict.rule} broke during the watch after the switch: {verdict.reason}; "
            f"rolling back to {op.detail.get('previous_version', '') or 'the previous version'}",
            level="error",
            data={"rule": verdict.rule},
        )
        self._start_rollback(op)

    def _start_rollback(self, op: OperationRecord) -> None:
        deployer = self._get_deployer()
        try:
            rb = plan_rollback(deployer, op.id)
        except ConfigError as exc:
            _finish_failed(
                self.env,
                op,
                None,
                f"the rollback cannot be planned: {exc.message}",
                "rollback_failed",
            )
            return
        if rb.blocked:
            why = "; ".join(c.detail for c in rb.blocked)
            _finish_failed(self.env, op, None, f"the rollback needs a person: {why}", "blocked")
            return
        with self._guard:
            if op.id in self._running:
                return
            self._running.add(op.id)
        _context(self.env, op).event(
            "watch.rollback",
            f"rolling back {op.target} {rb.deployment.version} -> {rb.to_version} "
            f"({rb.mode}: {len(rb.plan.steps)} steps)",
            data={"mode": rb.mode, "to_version": rb.to_version},
        )
        self.spawn(lambda: self._run(op.id, deployer, rb))

    def _run(self, op_id: str, deployer: WatchDeployer, rb: RollbackPlan) -> None:
        error = ""
        try:
            run_rollback(deployer, rb, owner=self.worker)
        except LockHeldError as exc:
            # Taken between the look and the start: watch again, judge again.
            op = self.store.get_operation(op_id)
            if op is not None:
                _update(self.store, self.clock, op_id, state=WATCHING)
                _context(self.env, op).event(
                    "watch.waiting", f"the rollback waits: {exc.message}", level="warning"
                )
        except DeployopsError as exc:
            error = exc.message  # the rollback's own record says why; settled below
        except Exception as exc:
            log.exception("the watch's rollback of %s failed", op_id)
            error = f"unexpected {type(exc).__name__}"
        finally:
            with self._guard:
                self._running.discard(op_id)
        op = self.store.get_operation(op_id)
        if op is None or watch_of(op).get("state") != ROLLING_BACK:
            return
        if error and self._rollback_of(op) is None:
            # It never began: say so, and leave it to a person rather than try in a loop.
            _finish_failed(
                self.env, op, None, f"the rollback could not start: {error}", "rollback_failed"
            )
            return
        self._settle(op)

    def _rollback_of(self, op: OperationRecord) -> OperationRecord | None:
        """The rollback the watch started for ``op`` (after its breach), if it exists."""
        since = _iso((watch_of(op).get("breach") or {}).get("at"))
        return next(
            (
                r
                for r in self.store.list_operations(
                    kinds=("rollback",), environment=op.environment, target=op.target, limit=20
                )
                if r.reverts == op.id and (since is None or r.created_at >= since)
            ),
            None,
        )

    def _settle(self, op: OperationRecord) -> None:
        """A rollback was decided: find how it went (after a restart too)."""
        with self._guard:
            if op.id in self._running:
                return  # ours, still running
        rollback = self._rollback_of(op)
        held = self.store.get_lock(lock_key(op.environment, op.target))
        if rollback is None:
            if held is None:
                # The intent was stored, the rollback never began (a crash in between).
                self._start_rollback(op)
            return
        if rollback.status == "running" or held is not None:
            return  # running here, or interrupted: `deployops resume` / the controller's start
        if rollback.status == "succeeded":
            finish_rolled_back(self.env, op, rollback)
        else:
            _finish_failed(
                self.env,
                op,
                rollback,
                f"the rollback {rollback.id} {rollback.status}: {rollback.error}",
                "rollback_failed",
            )
