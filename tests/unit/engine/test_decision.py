"""A rollout held on a marginal comparison waits for ``deployops decide`` or its timeout
(issue 19): decided while a thread waits, timed out on the virtual clock, first decision wins."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from deployops.clock import Clock, SystemClock, VirtualClock
from deployops.domain.judge import ColourWindow, Judgement, JudgePolicy, JudgeVerdict, judge
from deployops.engine.observe.decision import (
    NotHeldError,
    decide,
    record_judgement,
    wait_for_decision,
)
from deployops.store import StateStore


def marginal() -> Judgement:
    """A real marginal verdict: the latency spread alone is wider (score 80)."""
    import numpy as np

    rng = np.random.default_rng(17)
    base = ColourWindow(1000, 1, tuple(float(v) for v in rng.normal(0.2, 0.02, 1000)))
    canary = ColourWindow(1000, 1, tuple(float(v) for v in rng.normal(0.2, 0.06, 1000)))
    result = judge(base, canary, JudgePolicy())
    assert result.verdict is JudgeVerdict.MARGINAL
    return result


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")


def hold(store: StateStore, clock: Clock, dep: str = "dep-1") -> int:
    rec = record_judgement(
        store,
        clock,
        deployment_id=dep,
        environment="staging",
        service="web",
        source="canary step 1 (5 %)",
        judgement=marginal(),
        window={"start": "t0", "end": "t1"},
        held=True,
    )
    assert rec.held and rec.decision == ""
    return rec.id


def test_a_decision_made_while_a_thread_waits_is_returned(store: StateStore) -> None:
    clock = SystemClock()
    hold(store, clock)
    got: list[str] = []
    waiting = threading.Thread(
        target=lambda: got.append(
            wait_for_decision(store, clock, "dep-1", timeout_s=30, poll_s=0.02)
        )
    )
    waiting.start()
    decided = decide(
        store, clock, "dep-1", decision="continue", actor="ana", reason="spread is the warm-up"
    )
    waiting.join(timeout=10)
    assert got == ["continue"]
    assert (decided.decision, decided.decided_by) == ("continue", "ana")
    assert decided.decision_reason == "spread is the warm-up"
    assert [e.kind for e in store.events(deployment_id="dep-1")] == [
        "judgement.held",
        "judgement.decided",
    ]
    held_event = store.events(deployment_id="dep-1")[0]
    assert "deployops decide dep-1 --continue | --rollback" in held_event.message


def test_no_decision_times_out_on_the_virtual_clock_and_is_recorded(store: StateStore) -> None:
    clock = VirtualClock()
    jid = hold(store, clock)
    t0 = clock.monotonic()
    assert wait_for_decision(store, clock, "dep-1", timeout_s=1800) == "timeout"
    assert clock.monotonic() - t0 == pytest.approx(1800)
    rec = store.get_judgement(jid)
    assert rec is not None
    assert (rec.decision, rec.decided_by) == ("timeout", "deployops")
    assert rec.decision_reason == "no decision within 1800s"
    # Too late to decide now: the timeout was the decision.
    with pytest.raises(NotHeldError, match="already decided \\(timeout by deployops\\)"):
        decide(store, clock, "dep-1", decision="continue", actor="ana")


def test_a_decision_already_made_is_returned_at_once(store: StateStore) -> None:
    clock = VirtualClock()
    hold(store, clock)
    decide(store, clock, "dep-1", decision="rollback", actor="ana")
    t0 = clock.monotonic()
    assert wait_for_decision(store, clock, "dep-1", timeout_s=60) == "rollback"
    assert clock.monotonic() == t0


def test_only_a_marginal_held_deployment_takes_a_decision(store: StateStore) -> None:
    clock = VirtualClock()
    with pytest.raises(NotHeldError, match="not held for a decision") as err:
        decide(store, clock, "dep-2", decision="continue", actor="ana")
    assert err.value.exit_code == 2
    with pytest.raises(NotHeldError):
        wait_for_decision(store, clock, "dep-2", timeout_s=1)
    same = ColourWindow(500, 1, (0.1,) * 500)
    passing = judge(same, same, JudgePolicy())
    assert passing.verdict is JudgeVerdict.PASS
    with pytest.raises(ValueError, match="only a marginal verdict holds"):
        record_judgement(
            store,
            clock,
            deployment_id="dep-2",
            environment="staging",
            service="web",
            source="canary step 1",
            judgement=passing,
            held=True,
        )


def test_a_resumed_wait_keeps_the_deadline_of_the_hold(store: StateStore) -> None:
    """The timeout runs from when the rollout was held: a wait resumed 20 minutes later
    times out 10 minutes after that, not 30."""
    clock = VirtualClock()
    hold(store, clock)
    clock.advance(1200)
    t0 = clock.monotonic()
    assert wait_for_decision(store, clock, "dep-1", timeout_s=1800) == "timeout"
    assert clock.monotonic() - t0 == pytest.approx(600)
