"""Notices that could not be delivered while their command ran, kept in the state store and
retried by the controller (``deployops serve``) until delivered or expired.

A command (deploy, rollback, ...) waits at most ``notifications.redelivery.exit_wait`` at exit
for the deliveries still under way; what is left, and every final failure that may heal (a
receiver down, hanging, or answering 5xx/429), is parked with :class:`StoreOutbox`. The
controller's :class:`Redelivery` loop then tries each due notice once per round, with capped
exponential backoff between rounds::

    outbox = StoreOutbox(store=store, clock=clock, environment="production",
                         policy=cfg.redelivery)
    router = build_router(cfg, resolve=..., clock=clock, record=..., outbox=outbox)
    ...
    Redelivery(store=store, router=router, clock=clock, environment="production",
               policy=cfg.redelivery, worker=whoami()).run_due()   # every few seconds

A parked notice is claimed atomically before it is tried, and marked ``delivered`` once the
receiver took it, so it is delivered once (at least once: a receiver that took it but never
answered may see it again). Stored are the notice (what the engine said), the channel's name,
the attempts, the next attempt and the channel's last error with secrets scrubbed: never a
webhook URL, routing key or password.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from deployops.clock import Clock
from deployops.config.notifications import RedeliveryPolicy
from deployops.domain.notice import Notice

if TYPE_CHECKING:
    from deployops.notify.router import Delivery, NotificationRouter
    from deployops.store import PendingNotice, StateStore

__all__ = ["Redelivery", "StoreOutbox"]

# How long a claimed notice is held by the worker trying it: longer than any one try (a
# channel's timeout is at most a few tens of seconds); a worker that dies frees it after this.
CLAIM_HOLD_S = 300.0


@dataclass
class StoreOutbox:
    """The router's :class:`~deployops.notify.router.Outbox` over the state store."""

    store: StateStore
    clock: Clock
    environment: str
    policy: RedeliveryPolicy

    def park(self, notice: Notice, channel: str, *, attempts: int, error: str) -> int:
        now = self.clock.now()
        return self.store.park_notice(
            environment=self.environment,
            channel=channel,
            action=notice.action,
            title=notice.title,
            notice=notice.to_json(),
            attempts=attempts,
            last_error=error,
            now=now,
            next_attempt_at=now + timedelta(seconds=self.policy.initial_backoff),
        )

    def delivered(self, parked_id: int) -> None:
        self.store.finish_notice(parked_id, status="delivered", now=self.clock.now())


@dataclass
class Redelivery:
    """The controller's loop over parked notices: each due one is tried once per run."""

    store: StateStore
    router: NotificationRouter
    clock: Clock
    environment: str
    policy: RedeliveryPolicy
    worker: str
    batch: int = 20

    def run_due(self) -> list[Delivery]:
        """Try every due notice of the environment once; the outcomes."""
        out: list[Delivery] = []
        while True:
            now = self.clock.now()
            claimed = self.store.claim_due_notices(
                now=now,
                worker=self.worker,
                hold_until=now + timedelta(seconds=CLAIM_HOLD_S),
                environment=self.environment,
                limit=self.batch,
            )
            for rec in claimed:
                out.append(self._try(rec))
            if len(claimed) < self.batch:
                return out

    def _try(self, rec: PendingNotice) -> Delivery:
        from deployops.notify.router import Delivery

        notice = Notice.from_json(rec.notice)
        now = self.clock.now()
        if rec.channel not in self.router.channels:
            error = (
                f"channel {rec.channel!r} is no longer in notifications.channels; "
                "the notice is not retried"
            )
            self.store.finish_notice(rec.id, status="expired", now=now, last_error=error)
            return self.router.record(self._outcome(rec, notice, "expired", rec.attempts, error))
        delivery, may_heal = self.router.deliver_once(rec.channel, notice, attempts=rec.attempts)
        now = self.clock.now()
        if delivery.status == "sent":
            self.store.finish_notice(
                rec.id, status="delivered", now=now, attempts=delivery.attempts
            )
            return delivery
        attempts = delivery.attempts
        error = delivery.error or rec.last_error
        age = (now - rec.created_at).total_seconds()
        if not may_heal or age >= self.policy.expire_after:
            why = (
                f"gave up after {attempts} attempts over {_human(age)}: {error}"
                if may_heal
                else f"the channel refused it for good: {error}"
            )
            self.store.finish_notice(
                rec.id, status="expired", now=now, attempts=attempts, last_error=error
            )
            return self.router.record(self._outcome(rec, notice, "expired", attempts, why))
        delay = self.policy.delay(rec.rounds + 1)
        self.store.retry_notice_later(
            rec.id,
            now=now,
            attempts=attempts,
            last_error=error,
            next_attempt_at=now + timedelta(seconds=delay),
        )
        return self.router.record(
            Delivery(
                ts=now,
                channel=rec.channel,
                channel_type=delivery.channel_type,
                action=notice.action,
                status="retrying",
                attempts=attempts,
                severity=notice.severity,
                kind=notice.kind,
                title=notice.title,
                dedup_key=notice.dedup_key,
                error=error,
                hint=delivery.hint,
                retry_in=delay,
                deployment_id=notice.deployment_id,
                environment=notice.environment or self.environment,
                service=notice.service,
            )
        )

    def _outcome(
        self, rec: PendingNotice, notice: Notice, status: str, attempts: int, error: str
    ) -> Delivery:
        from deployops.notify.router import Delivery

        notifier = self.router.channels.get(rec.channel)
        return Delivery(
            ts=self.clock.now(),
            channel=rec.channel,
            channel_type=notifier.name if notifier is not None else "",
            action=notice.action,
            status=status,  # type: ignore[arg-type]
            attempts=attempts,
            severity=notice.severity,
            kind=notice.kind,
            title=notice.title,
            dedup_key=notice.dedup_key,
            error=self.router.scrub(error),
            deployment_id=notice.deployment_id,
            environment=notice.environment or self.environment,
            service=notice.service,
        )


def _human(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"
