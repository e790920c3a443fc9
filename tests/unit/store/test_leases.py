"""The controller lease in the store: one holder at a time, renewals keep it, a standby takes
it only after it expires, a release hands it over at once (two controllers, one store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from deployops.clock import VirtualClock
from deployops.engine.lease import LeaderLease
from deployops.store import StateStore

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def test_one_holder_renewals_expiry_and_release(tmp_path: Path) -> None:
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        a = store.hold_lease("controller/production", holder="a", now=T0, ttl_s=15)
        assert a.holder == "a"
        assert a.expires_at == (T0 + timedelta(seconds=15)).timestamp()
        # b is refused while a's lease runs; a's renewal extends it and keeps acquired_at.
        b = store.hold_lease(
            "controller/production", holder="b", now=T0 + timedelta(seconds=10), ttl_s=15
        )
        assert b.holder == "a"
        a2 = store.hold_lease(
            "controller/production", holder="a", now=T0 + timedelta(seconds=12), ttl_s=15
        )
        assert (a2.holder, a2.acquired_at) == ("a", T0)
        still = store.hold_lease(
            "controller/production", holder="b", now=T0 + timedelta(seconds=26), ttl_s=15
        )
        assert still.holder == "a", "renewed at +12 s, so a holds it until +27 s"
        taken = store.hold_lease(
            "controller/production", holder="b", now=T0 + timedelta(seconds=28), ttl_s=15
        )
        assert (taken.holder, taken.acquired_at) == ("b", T0 + timedelta(seconds=28))
        # Other environments have their own lease.
        assert store.hold_lease("controller/staging", holder="a", now=T0, ttl_s=15).holder == "a"
        assert not store.release_lease("controller/production", holder="a")
        assert store.release_lease("controller/production", holder="b")
        assert (
            store.hold_lease(
                "controller/production", holder="a", now=T0 + timedelta(seconds=29), ttl_s=15
            ).holder
            == "a"
        )
    finally:
        store.close()


def test_leader_lease_reports_who_leads(tmp_path: Path) -> None:
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    clock = VirtualClock(T0)
    try:
        first = LeaderLease(store=store, name="controller/x", holder="a", clock=clock, ttl_s=3)
        second = LeaderLease(store=store, name="controller/x", holder="b", clock=clock, ttl_s=3)
        assert first.hold()
        assert not second.hold()
        assert second.leader == "a"
        clock.advance(3.5)  # a stopped renewing
        assert second.hold()
        assert not first.hold()
        second.release()
        assert first.hold()
    finally:
        store.close()
