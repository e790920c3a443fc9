"""Undelivered notices are kept and retried (MON-2, DEP-7): a command's router waits a bounded
time at close, parks what is still undelivered (or failed in a way that may heal) in the state
store, and the controller's :class:`Redelivery` delivers each once, with capped backoff between
tries, until delivered or expired. Slack is reached through httpx's mock transport (a hanging
receiver is a handler that blocks); the real receivers and processes are in tests/faults."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from deployops.clock import VirtualClock
from deployops.config.notifications import NotificationsConfig, load_notifications
from deployops.notify import Notice, NotificationRouter, build_router, store_recorder
from deployops.notify.outbox import Redelivery, StoreOutbox
from deployops.secret import Secret
from deployops.store import StateStore

HOOK = "https://hooks.slack.com/services/T0/B1/OUTBOXSECRET"


@dataclass
class Slack:
    """Up (200), down (connection refused) or hanging (blocks until released)."""

    mode: str = "up"
    seen: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    entered: threading.Event = field(default_factory=threading.Event)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.mode == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if self.mode == "hanging":
            self.entered.set()
            self.release.wait(30)
        self.seen.append(json.loads(request.content)["text"])
        return httpx.Response(200, text="ok")


def _config() -> NotificationsConfig:
    return load_notifications(
        {
            "channels": {"team": {"type": "slack", "webhook_url": "secret://hook"}},
            "routes": {"warning": ["team"], "critical": ["team"]},
            "retry": {"attempts": 3, "initial_backoff": "1s", "max_backoff": "4s"},
            "redelivery": {
                "exit_wait": "1s",
                "initial_backoff": "10s",
                "max_backoff": "40s",
                "expire_after": "1h",
            },
        }
    )


@dataclass
class Rig:
    store: StateStore
    clock: VirtualClock
    slack: Slack
    config: NotificationsConfig

    def router(self) -> NotificationRouter:
        return build_router(
            self.config,
            resolve=lambda _n: Secret(HOOK),
            clock=self.clock,
            record=store_recorder(self.store, self.clock),
            http=httpx.Client(transport=httpx.MockTransport(self.slack)),
            outbox=StoreOutbox(
                store=self.store,
                clock=self.clock,
                environment="production",
                policy=self.config.redelivery,
            ),
        )

    def redelivery(self, router: NotificationRouter) -> Redelivery:
        return Redelivery(
            store=self.store,
            router=router,
            clock=self.clock,
            environment="production",
            policy=self.config.redelivery,
            worker="controller@test:1",
        )


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    yield Rig(store=store, clock=VirtualClock(), slack=Slack(), config=_config())
    store.close()


def _notice(title: str = "web 1.0.1 failed in production") -> Notice:
    return Notice(
        severity="critical",
        kind="deployment.failed",
        title=title,
        text=f"{title}: green never turned healthy",
        deployment_id="dep-20260301-120000-abcd",
        environment="production",
        service="web",
    )


def test_dep7_close_is_bounded_with_a_hanging_receiver_and_parks_the_notice(rig: Rig) -> None:
    rig.slack.mode = "hanging"
    router = rig.router()
    router.submit(_notice())
    assert rig.slack.entered.wait(5)
    t0 = time.monotonic()
    left = router.close(timeout=0.3)
    assert time.monotonic() - t0 < 2.0
    assert [(d.channel, d.status) for d in left] == [("team", "queued")]
    (row,) = rig.store.pending_notices(environment="production")
    assert (row.status, row.channel, row.action, row.title) == (
        "pending",
        "team",
        "trigger",
        "web 1.0.1 failed in production",
    )
    assert "not delivered before the command exited" in row.last_error
    assert row.next_attempt_at == rig.clock.now() + timedelta(seconds=10)
    assert Notice.from_json(row.notice) == _notice()
    queued = rig.store.events(kind="notify.queued")
    assert len(queued) == 1 and queued[0].deployment_id == "dep-20260301-120000-abcd"
    rig.slack.release.set()


def test_dep7_a_try_that_gets_through_after_close_marks_the_parked_copy_delivered(
    rig: Rig,
) -> None:
    """The receiver answers just after the command stopped waiting: the parked copy is marked
    delivered, so the controller never sends it a second time."""
    rig.slack.mode = "hanging"
    router = rig.router()
    done = router.submit(_notice())
    assert rig.slack.entered.wait(5)
    router.close(timeout=0.1)
    rig.slack.release.set()
    done.result(timeout=5)
    deadline = time.monotonic() + 5
    while rig.store.notice_counts().get("delivered") != 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert rig.store.notice_counts() == {"delivered": 1}
    rig.slack.mode = "up"
    assert rig.redelivery(rig.router()).run_due() == []
    assert len(rig.slack.seen) == 1


def test_dep7_a_receiver_down_is_parked_after_its_retries_and_delivered_once_later(
    rig: Rig,
) -> None:
    rig.slack.mode = "down"
    out = rig.router().notify(_notice())
    assert [(d.status, d.attempts) for d in out] == [("queued", 3)]
    (row,) = rig.store.pending_notices()
    assert (row.status, row.attempts) == ("pending", 3)
    assert "connection refused" in row.last_error

    controller = rig.redelivery(rig.router())
    assert controller.run_due() == []  # not due before its backoff
    rig.clock.advance(10)
    rig.slack.mode = "up"
    delivered = controller.run_due()
    assert [(d.status, d.attempts) for d in delivered] == [("sent", 4)]
    assert controller.run_due() == []
    rig.clock.advance(3600)
    assert controller.run_due() == []
    (text,) = rig.slack.seen
    assert "green never turned healthy" in text
    (row,) = rig.store.pending_notices(status="delivered")
    assert row.finished_at is not None
    sent = rig.store.events(kind="notify.sent")
    assert [e.data["attempts"] for e in sent] == [4]


def test_dep7_redelivery_backs_off_then_expires_and_says_so(rig: Rig) -> None:
    rig.slack.mode = "down"
    rig.router().notify(_notice())
    controller = rig.redelivery(rig.router())
    waits = []
    for _ in range(5):
        (row,) = rig.store.pending_notices(status="pending")
        wait = (row.next_attempt_at - rig.clock.now()).total_seconds()
        waits.append(wait)
        rig.clock.advance(wait)
        (d,) = controller.run_due()
        assert d.status == "retrying"
    # 10 s after parking, then 10, 20, 40 (the cap), 40
    assert waits == [10.0, 10.0, 20.0, 40.0, 40.0]
    rig.clock.advance(3600)
    (d,) = controller.run_due()
    assert d.status == "expired"
    assert "gave up after 9 attempts" in d.error
    (row,) = rig.store.pending_notices()
    assert row.status == "expired"
    (ev,) = rig.store.events(kind="notify.expired")
    assert ev.level == "error"


def test_sec_no_secret_is_kept_with_an_undelivered_notice(rig: Rig) -> None:
    rig.slack.mode = "down"
    rig.router().notify(_notice())
    rows = rig.store.pending_notices()
    dumped = json.dumps([r.notice for r in rows]) + repr(rows)
    dumped += json.dumps([e.data for e in rig.store.events()]) + repr(rig.store.events())
    assert "OUTBOXSECRET" not in dumped


def test_dep7_two_workers_never_both_claim_a_notice(rig: Rig) -> None:
    rig.slack.mode = "down"
    rig.router().notify(_notice())
    rig.clock.advance(10)
    now = rig.clock.now()
    first = rig.store.claim_due_notices(now=now, worker="a", hold_until=now + timedelta(minutes=5))
    second = rig.store.claim_due_notices(now=now, worker="b", hold_until=now + timedelta(minutes=5))
    assert (len(first), len(second)) == (1, 0)
