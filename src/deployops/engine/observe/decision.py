"""Holding a rollout on a marginal comparison until someone decides (or the timeout does).

A canary step whose comparison came out Marginal, with ``rollback.analysis.on_marginal:
hold``, stores the judgement as *held* (:func:`record_judgement` with ``held=True``) and waits
in :func:`wait_for_decision`. ``deployops decide ID --continue | --rollback`` records the
decision on that judgement (:func:`decide`); after ``decision_timeout`` (default 30 min) the
wait records ``timeout`` itself and the caller rolls back. The first decision wins: a person
deciding in the same instant as the timeout either wins or is told it came too late.

    rec = record_judgement(store, clock, deployment=op, source="canary step 1 (5 %)",
                           judgement=result, held=True)
    match wait_for_decision(store, clock, op.id, timeout_s=1800):
        case "continue": ...
        case "rollback" | "timeout": ...
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from deployops.clock import Clock
from deployops.domain.judge import Judgement, JudgeVerdict
from deployops.errors import ConfigError
from deployops.store import EventRecord, JudgementRecord, StateStore

__all__ = [
    "DecisionOutcome",
    "NotHeldError",
    "decide",
    "latest_held",
    "record_judgement",
    "wait_for_decision",
]

DecisionOutcome = Literal["continue", "rollback", "timeout"]


class NotHeldError(ConfigError):
    """A decision for a deployment that no marginal comparison is holding (exit 2)."""


def record_judgement(
    store: StateStore,
    clock: Clock,
    *,
    deployment_id: str,
    environment: str,
    service: str,
    source: str,
    judgement: Judgement,
    window: Mapping[str, Any] | None = None,
    held: bool = False,
) -> JudgementRecord:
    """Store a comparison's verdict with every metric's numbers and reason (and an event).
    ``held`` only for a Marginal verdict that waits for a decision."""
    if held and judgement.verdict is not JudgeVerdict.MARGINAL:
        raise ValueError(f"only a marginal verdict holds a rollout, not {judgement.verdict}")
    rec = JudgementRecord(
        ts=clock.now(),
        deployment_id=deployment_id,
        environment=environment,
        service=service,
        source=source,
        verdict=judgement.verdict.value,
        score=judgement.score,
        detail={**judgement.to_dict(), "window": dict(window or {})},
        held=held,
    )
    rec_id = store.add_judgement(rec)
    store.add_event(
        EventRecord(
            ts=rec.ts,
            kind="judgement.held" if held else "judgement",
            level="info" if judgement.verdict is JudgeVerdict.PASS else "warning",
            deployment_id=deployment_id,
            environment=environment,
            service=service,
            message=(
                f"{source}: {judgement.verdict.value} (score {judgement.score:g}): "
                f"{judgement.reason}"
                + (
                    f"; held for a decision: deployops decide {deployment_id} "
                    "--continue | --rollback"
                    if held
                    else ""
                )
            ),
            data={"judgement": rec_id, "verdict": judgement.verdict.value, "held": held},
        )
    )
    stored = store.get_judgement(rec_id)
    assert stored is not None
    return stored


def latest_held(store: StateStore, deployment_id: str) -> JudgementRecord | None:
    """The newest held judgement of the deployment, decided or not."""
    held = [j for j in store.judgements(deployment_id=deployment_id) if j.held]
    return held[-1] if held else None


def decide(
    store: StateStore,
    clock: Clock,
    deployment_id: str,
    *,
    decision: Literal["continue", "rollback"],
    actor: str,
    reason: str = "",
) -> JudgementRecord:
    """Record ``decision`` on the judgement holding ``deployment_id``. ``NotHeldError`` when
    nothing holds it (never held, or already decided or timed out)."""
    pending = store.held_judgement(deployment_id)
    if pending is None:
        last = latest_held(store, deployment_id)
        if last is None:
            raise NotHeldError(
                f"deployment {deployment_id} is not held for a decision: no marginal "
                "comparison is waiting",
                hint=f"deployops deployments show {deployment_id} shows its judgements; "
                "only a rollout held on a marginal verdict takes a decision",
            )
        raise NotHeldError(
            f"deployment {deployment_id} is not held any more: its marginal comparison was "
            f"already decided ({last.decision} by {last.decided_by or '-'})",
            hint=f"deployops deployments show {deployment_id} shows what happened since",
        )
    now = clock.now()
    if not store.decide_judgement(
        pending.id, decision=decision, actor=actor, reason=reason, now=now
    ):
        last = store.get_judgement(pending.id)
        made = last.decision if last is not None else "?"
        raise NotHeldError(
            f"deployment {deployment_id} was decided in the meantime ({made})",
            hint=f"deployops deployments show {deployment_id} shows the decision",
        )
    store.add_event(
        EventRecord(
            ts=now,
            kind="judgement.decided",
            level="warning" if decision == "rollback" else "info",
            deployment_id=deployment_id,
            environment=pending.environment,
            service=pending.service,
            message=f"{actor} decided {decision} on {pending.source}"
            + (f": {reason}" if reason else ""),
            data={"judgement": pending.id, "decision": decision, "actor": actor},
        )
    )
    done = store.get_judgement(pending.id)
    assert done is not None
    return done


def wait_for_decision(
    store: StateStore,
    clock: Clock,
    deployment_id: str,
    *,
    timeout_s: float,
    poll_s: float = 1.0,
) -> DecisionOutcome:
    """Wait (through ``clock``) for the decision on the judgement holding ``deployment_id``;
    ``timeout_s`` after the rollout was held (the judgement's time, so a wait resumed after a
    restart keeps the same deadline) the wait records ``timeout`` on it and returns that (the
    caller rolls back). ``NotHeldError`` if no held judgement exists."""
    held = latest_held(store, deployment_id)
    if held is None:
        raise NotHeldError(
            f"deployment {deployment_id} is not held for a decision",
            hint="record the marginal judgement with held=True first",
        )
    # From when the rollout was held, not from this call: a wait resumed after a restart
    # does not start the timeout again.
    deadline = held.ts + timedelta(seconds=timeout_s)
    while True:
        current = store.get_judgement(held.id)
        if current is not None and current.decision:
            return _outcome(current.decision)
        left = (deadline - clock.now()).total_seconds()
        if left <= 0:
            break
        clock.sleep(min(poll_s, left))
    reason = f"no decision within {timeout_s:g}s"
    if store.decide_judgement(
        held.id, decision="timeout", actor="deployops", reason=reason, now=clock.now()
    ):
        store.add_event(
            EventRecord(
                ts=clock.now(),
                kind="judgement.timeout",
                level="warning",
                deployment_id=deployment_id,
                environment=held.environment,
                service=held.service,
                message=f"{held.source}: {reason}; rolling back",
                data={"judgement": held.id, "decision": "timeout"},
            )
        )
        return "timeout"
    current = store.get_judgement(held.id)  # decided in the very last instant: that wins
    return _outcome(current.decision if current is not None else "timeout")


def _outcome(decision: str) -> DecisionOutcome:
    if decision == "continue":
        return "continue"
    if decision == "rollback":
        return "rollback"
    return "timeout"
