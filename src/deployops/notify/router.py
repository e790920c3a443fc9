"""Who hears what: routes a :class:`Notice` to its channels with retries, a rate limit and
deduplication, and records every attempt (MON-2, DEP-7).

    router = build_router(cfg.notifications, resolve=secret_store.get, clock=clock,
                          record=store_recorder(store, clock))
    router.notify(Notice(severity="critical", kind="alarm.alarm", title="LowHealthyHosts",
                         text="1 healthy host (threshold 2)", dedup_key="alarm:LowHealthyHosts"))
    # ... later, when the alarm returns to OK: same severity and dedup_key, resolve=True
    router.notify(Notice(severity="critical", kind="alarm.ok", title="LowHealthyHosts",
                         dedup_key="alarm:LowHealthyHosts", resolve=True))

:meth:`NotificationRouter.notify` never raises: a channel that is down is retried with capped
exponential backoff on the injected clock, then recorded as ``failed`` and returned; the deploy
or rollback carries on. :meth:`NotificationRouter.submit` does the same on a background thread
per channel, for callers that must not wait for retries at all.

With an :class:`Outbox` (the state store's, :mod:`deployops.notify.outbox`), a notice that is
not delivered is not lost: a final failure that may heal (a receiver down or hanging), or a
delivery still under way when :meth:`NotificationRouter.close` stops waiting, is *parked*
there (status ``queued``), and ``deployops serve`` retries it until it is delivered or expires.
So a command exits within ``close(timeout=...)`` whatever its receivers do.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

import httpx

from deployops.clock import Clock
from deployops.config.notifications import (
    SECRET_PREFIX,
    EmailChannel,
    NotificationsConfig,
    PagerDutyChannel,
    RateLimitPolicy,
    SlackChannel,
    check_webhook_url,
    secret_name,
)
from deployops.domain.notice import Notice, NoticeLike
from deployops.errors import ConfigError, ConfigIssue, DeployopsError, DriverError
from deployops.notify._channel import Channel
from deployops.notify._http import NotifyError, scrub
from deployops.notify.email import EmailNotifier
from deployops.notify.pagerduty import PagerDutyNotifier
from deployops.notify.slack import SlackNotifier
from deployops.ports import Notifier
from deployops.secret import Secret
from deployops.store.records import EventRecord

if TYPE_CHECKING:
    from deployops.store.store import StateStore

__all__ = [
    "Delivery",
    "DeliveryStatus",
    "Notice",
    "NoticeLike",
    "NotificationRouter",
    "Outbox",
    "Recorder",
    "TokenBucket",
    "build_router",
    "store_recorder",
]

log = logging.getLogger(__name__)

DeliveryStatus = Literal[
    "sent", "failed", "retrying", "deduplicated", "rate_limited", "queued", "expired"
]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outcome on one channel. ``retrying`` records a failed attempt that will be tried
    again after ``retry_in`` seconds; ``queued`` a notice parked in the outbox for the
    controller to retry, ``expired`` one it gave up on; ``notify`` returns only final
    outcomes."""

    ts: datetime
    channel: str
    channel_type: str
    action: Literal["trigger", "resolve"]
    status: DeliveryStatus
    attempts: int
    severity: str
    kind: str
    title: str
    dedup_key: str
    error: str = ""
    hint: str = ""
    retry_in: float | None = None
    deployment_id: str | None = None
    environment: str = ""
    service: str = ""

    @property
    def ok(self) -> bool:
        """Sent, or deliberately not sent again (a duplicate)."""
        return self.status in ("sent", "deduplicated")

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ts"] = self.ts.isoformat()
        return out


Recorder = Callable[[Delivery], None]


class Outbox(Protocol):
    """Where undelivered notices wait for the controller (:class:`deployops.notify.outbox.
    StoreOutbox`)."""

    def park(self, notice: Notice, channel: str, *, attempts: int, error: str) -> int:
        """Keep ``notice`` for ``channel``; its id. Raises when it cannot be kept."""

    def delivered(self, parked_id: int) -> None:
        """A parked notice was delivered after all (it must not be sent again)."""


@dataclass(eq=False)
class _Item:
    """One notice on one channel, from :meth:`NotificationRouter.submit` to its outcome."""

    notice: Notice
    channel: str
    state: str = "queued"  # queued | sending | done | parked
    attempts: int = 0
    error: str = ""
    parked_id: int | None = None
    delivery: Delivery | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)
    on_done: Callable[[], None] | None = None


class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` per second on the injected clock."""

    def __init__(self, *, capacity: int, rate: float, clock: Clock) -> None:
        self.capacity = float(capacity)
        self.rate = rate
        self._clock = clock
        self._tokens = float(capacity)
        self._stamp: float | None = None

    def take(self) -> bool:
        now = self._clock.monotonic()
        if self._stamp is not None:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class NotificationRouter:
    """Sends notices to the channels their severity and kind are routed to.

    ``channels`` maps a channel name (``slack-alerts``) to its :class:`~deployops.ports.Notifier`;
    ``config`` supplies routes, retry, rate-limit and dedup settings; ``record`` receives every
    :class:`Delivery` (use :func:`store_recorder` to keep them as store events).
    """

    def __init__(
        self,
        *,
        config: NotificationsConfig,
        channels: Mapping[str, Notifier],
        clock: Clock,
        record: Recorder | None = None,
        secrets: Iterable[Secret] = (),
        http: httpx.Client | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.config = config
        self.channels = dict(channels)
        self._clock = clock
        self._record = record
        self._secrets = tuple(secrets)
        self._http = http  # closed by close(); owned when build_router created it
        self.outbox = outbox
        self._locks = {name: threading.Lock() for name in self.channels}
        self._buckets: dict[str, TokenBucket] = {}
        self._sent: dict[tuple[str, str], tuple[str, float]] = {}
        self._state_lock = threading.Lock()
        # submit(): one daemon worker per channel, so a receiver that hangs delays only its own
        # channel and never the process's exit (a thread pool's workers are joined at exit).
        self._queues: dict[str, queue.SimpleQueue[_Item | None]] = {}
        self._workers: dict[str, threading.Thread] = {}
        self._open: set[_Item] = set()
        self._closing = threading.Event()

    # ------------------------------------------------------------------ public API
    def route(self, notice: Notice | NoticeLike) -> tuple[str, ...]:
        """The channel names ``notice`` goes to (PagerDuty only for critical)."""
        notice = Notice.of(notice)
        names = self.config.channels_for(severity=notice.severity, kind=notice.kind)
        return tuple(
            n
            for n in names
            if n in self.channels
            and (self.channels[n].name != "pagerduty" or notice.severity == "critical")
        )

    def notify(self, notice: Notice | NoticeLike) -> list[Delivery]:
        """Deliver ``notice`` on every routed channel; one final :class:`Delivery` each.
        Never raises."""
        parsed = self._parse(notice)
        if parsed is None:
            return []
        out: list[Delivery] = []
        for name in self.route(parsed):
            item = _Item(parsed, name)
            self._run(item)
            assert item.delivery is not None
            out.append(item.delivery)
        return out

    def submit(self, notice: Notice | NoticeLike) -> Future[list[Delivery]]:
        """:meth:`notify` on background threads (one per channel); the caller does not wait
        for retries. The future holds the final deliveries in route order."""
        future: Future[list[Delivery]] = Future()
        parsed = self._parse(notice)
        names = self.route(parsed) if parsed is not None else ()
        if parsed is None or not names:
            future.set_result([])
            return future
        items = [_Item(parsed, name) for name in names]
        remaining = [len(items)]
        count_lock = threading.Lock()

        def one_done() -> None:
            with count_lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                future.set_result([i.delivery for i in items if i.delivery is not None])

        for item in items:
            item.on_done = one_done
            with self._state_lock:
                self._open.add(item)
                q = self._queues.get(item.channel)
                if q is None:
                    q = self._queues[item.channel] = queue.SimpleQueue()
                    th = threading.Thread(
                        target=self._work,
                        args=(q,),
                        name=f"notify-{item.channel}",
                        daemon=True,
                    )
                    self._workers[item.channel] = th
                    th.start()
            q.put(item)
        return future

    def close(self, *, wait: bool = True, timeout: float | None = None) -> list[Delivery]:
        """Stop taking background work: wait for the notices under way (at most ``timeout``
        seconds; not at all without ``wait``), then park what is still undelivered in the
        outbox (without one it is dropped, and recorded as ``failed``). Returns those parked
        or dropped notices' deliveries. An owned HTTP client is closed once nothing uses it.

        The bound is real time on purpose: it limits how long this process waits for its own
        threads, whatever clock the deliveries run on."""
        self._closing.set()
        with self._state_lock:
            items = list(self._open)
        if wait:
            import time

            deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
            for item in items:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                item.done.wait(left)
        left_over: list[Delivery] = []
        for item in items:
            delivery = self._abandon(item)
            if delivery is not None:
                left_over.append(delivery)
        with self._state_lock:
            busy = bool(self._open)
            if not busy:
                for q in self._queues.values():
                    q.put(None)
                self._queues.clear()
        if not busy and self._http is not None:
            self._http.close()
        return left_over

    def __enter__(self) -> NotificationRouter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def deliver_once(
        self, name: str, notice: Notice, *, attempts: int = 0
    ) -> tuple[Delivery, bool]:
        """One try of ``notice`` on ``name`` (a parked notice's redelivery): recorded, no
        duplicate check (it was never delivered), the channel's rate limit applied. Returns the
        delivery (``sent``, ``failed`` or ``rate_limited``) and whether a failure may heal.
        ``attempts`` is how many tries came before."""
        notifier = self.channels[name]
        with self._locks[name]:
            if not self._bucket(name).take():
                return self._delivery(name, notice, "rate_limited", attempts), True
            try:
                self._call(notifier, notice)
            except DriverError as exc:
                return (
                    self._delivery(
                        name, notice, "failed", attempts + 1, error=exc.message, hint=exc.hint or ""
                    ),
                    exc.retryable,
                )
            except Exception as exc:  # noqa: BLE001 - a broken channel is a failed delivery
                return (
                    self._delivery(
                        name,
                        notice,
                        "failed",
                        attempts + 1,
                        error=f"{name}: unexpected {type(exc).__name__}",
                    ),
                    False,
                )
            self._mark_sent(name, notice)
            return self._emit(self._delivery(name, notice, "sent", attempts + 1)), False

    def record(self, delivery: Delivery) -> Delivery:
        """Log and record ``delivery`` like the router's own (the outbox's outcomes)."""
        return self._emit(delivery)

    def scrub(self, text: str) -> str:
        """``text`` with every secret value of the channels replaced."""
        return scrub(text, self._secrets)

    # ------------------------------------------------------------------ background work
    @staticmethod
    def _parse(notice: Notice | NoticeLike) -> Notice | None:
        try:
            return Notice.of(notice)
        except Exception as exc:  # noqa: BLE001 - a malformed notice must not break a deploy
            log.warning("not a usable notice (%s); nothing sent", type(exc).__name__)
            return None

    def _work(self, q: queue.SimpleQueue[_Item | None]) -> None:
        while True:
            item = q.get()
            if item is None:
                return
            self._run(item)

    def _run(self, item: _Item) -> None:
        """Deliver ``item`` (with retries) and settle it: done, or parked when it failed in
        a way that may heal. An item parked meanwhile by close() is only told the outcome."""
        with item.lock:
            if item.state != "queued":
                return
            item.state = "sending"
        retryable = False
        try:
            delivery, retryable = self._deliver(item.channel, item.notice, item)
        except Exception as exc:  # noqa: BLE001 - a notification must never break a deploy
            delivery = self._emit(
                self._delivery(
                    item.channel,
                    item.notice,
                    "failed",
                    item.attempts,
                    error=f"internal error: {type(exc).__name__}",
                )
            )
        with item.lock:
            if item.state == "parked":
                # close() parked it while this try was under way, and the try got through:
                # the parked copy must not be sent again.
                if delivery.status == "sent" and item.parked_id is not None and self.outbox:
                    try:
                        self.outbox.delivered(item.parked_id)
                    except Exception as exc:  # noqa: BLE001 - recording must not break delivery
                        log.warning("could not mark a parked notice delivered: %s", exc)
                return
            if item.state == "done":
                return  # close() gave up on it (no outbox) and said so
            if delivery.status == "failed" and retryable and self.outbox is not None:
                delivery = self._park(item, delivery.attempts, delivery.error) or delivery
            if item.state != "parked":
                item.state = "done"
            item.delivery = delivery
        self._finish(item)

    def _abandon(self, item: _Item) -> Delivery | None:
        """close(): park (or drop) ``item`` if it has not settled yet."""
        with item.lock:
            if item.state in ("done", "parked"):
                return None
            why = "not delivered before the command exited"
            error = f"{why} ({item.error})" if item.error else why
            delivery = None
            if self.outbox is not None:
                delivery = self._park(item, item.attempts, error)
            if delivery is None:
                delivery = self._emit(
                    self._delivery(
                        item.channel,
                        item.notice,
                        "failed",
                        item.attempts,
                        error=error,
                        hint="the notice is in the state store's events only",
                    )
                )
                item.state = "done"
            item.delivery = delivery
        self._finish(item)
        return delivery

    def _park(self, item: _Item, attempts: int, error: str) -> Delivery | None:
        """Keep ``item`` in the outbox (caller holds ``item.lock``); None if it could not."""
        assert self.outbox is not None
        error = scrub(error, self._secrets)
        try:
            item.parked_id = self.outbox.park(
                item.notice, item.channel, attempts=attempts, error=error
            )
        except Exception as exc:  # noqa: BLE001 - the store may be what is down
            log.warning(
                "could not keep an undelivered notice for later (%s): %s",
                type(exc).__name__,
                scrub(str(exc), self._secrets),
            )
            return None
        item.state = "parked"
        return self._emit(
            self._delivery(
                item.channel,
                item.notice,
                "queued",
                attempts,
                error=error,
                hint="kept in the state store; `deployops serve` retries it "
                "(`deployops notifications list` shows it)",
            )
        )

    def _finish(self, item: _Item) -> None:
        item.done.set()
        with self._state_lock:
            self._open.discard(item)
        if item.on_done is not None:
            item.on_done()

    # ------------------------------------------------------------------ delivery
    def _deliver(
        self, name: str, notice: Notice, item: _Item | None = None
    ) -> tuple[Delivery, bool]:
        """Deliver with retries; the final delivery and whether its failure may heal."""
        notifier = self.channels[name]
        with self._locks[name]:
            if self._is_duplicate(name, notice):
                return self._emit(self._delivery(name, notice, "deduplicated", 0)), False
            if not self._bucket(name).take():
                limited = self._emit(
                    self._delivery(
                        name,
                        notice,
                        "rate_limited",
                        0,
                        error=f"more than {self.config.rate_limit.burst} notices at once on "
                        f"{name} (limit {self.config.rate_limit.per_minute:g}/min); dropped",
                        hint="raise notifications.rate_limit or route fewer kinds here",
                    )
                )
                return limited, False
            policy = self.config.retry
            attempt = 0
            while True:
                attempt += 1
                try:
                    self._call(notifier, notice)
                except DriverError as exc:
                    error, hint, retryable = exc.message, exc.hint or "", exc.retryable
                    retry_after = exc.retry_after if isinstance(exc, NotifyError) else None
                except Exception as exc:  # noqa: BLE001 - a broken channel is a failed delivery
                    error, hint, retryable, retry_after = (
                        f"{name}: unexpected {type(exc).__name__}",
                        "",
                        False,
                        None,
                    )
                else:
                    self._mark_sent(name, notice)
                    return self._emit(self._delivery(name, notice, "sent", attempt)), False
                if item is not None:
                    item.attempts, item.error = attempt, scrub(error, self._secrets)
                if not retryable or attempt >= policy.attempts or self._stopping(item):
                    failed = self._delivery(name, notice, "failed", attempt, error=error, hint=hint)
                    return self._emit(failed), retryable
                delay = policy.delay(attempt)
                if retry_after is not None:
                    # Honour the receiver's Retry-After (Slack, PagerDuty 429), within our cap.
                    delay = min(policy.max_backoff, max(delay, retry_after))
                self._emit(
                    self._delivery(
                        name, notice, "retrying", attempt, error=error, hint=hint, retry_in=delay
                    )
                )
                self._clock.sleep(delay)
                if self._stopping(item):
                    failed = self._delivery(name, notice, "failed", attempt, error=error, hint=hint)
                    return self._emit(failed), retryable

    def _stopping(self, item: _Item | None) -> bool:
        """A background delivery stops retrying once close() has begun (it gets parked)."""
        return item is not None and self._closing.is_set()

    @staticmethod
    def _call(notifier: Notifier, notice: Notice) -> None:
        if notice.resolve:
            notifier.resolve(
                dedup_key=notice.dedup_key,
                title=notice.title,
                text=notice.text,
                severity=notice.severity,
                fields=notice.fields,
                kind=notice.kind,
            )
        else:
            notifier.send(
                severity=notice.severity,
                title=notice.title,
                text=notice.text,
                dedup_key=notice.dedup_key,
                fields=notice.fields,
                kind=notice.kind,
            )

    def _is_duplicate(self, name: str, notice: Notice) -> bool:
        with self._state_lock:
            last = self._sent.get((name, notice.dedup_key))
        if last is None:
            return False
        action, when = last
        return action == notice.action and (
            self._clock.monotonic() - when < self.config.dedup_window
        )

    def _mark_sent(self, name: str, notice: Notice) -> None:
        now = self._clock.monotonic()
        with self._state_lock:
            self._sent[(name, notice.dedup_key)] = (notice.action, now)
            if len(self._sent) > 10_000:  # forget what is outside the window
                horizon = now - self.config.dedup_window
                self._sent = {k: v for k, v in self._sent.items() if v[1] >= horizon}

    def _bucket(self, name: str) -> TokenBucket:
        with self._state_lock:
            bucket = self._buckets.get(name)
            if bucket is None:
                limit: RateLimitPolicy = self.config.rate_limit
                bucket = TokenBucket(
                    capacity=limit.burst, rate=limit.per_minute / 60.0, clock=self._clock
                )
                self._buckets[name] = bucket
            return bucket

    def _delivery(
        self,
        name: str,
        notice: Notice,
        status: DeliveryStatus,
        attempts: int,
        *,
        error: str = "",
        hint: str = "",
        retry_in: float | None = None,
    ) -> Delivery:
        notifier = self.channels.get(name)
        return Delivery(
            ts=self._clock.now(),
            channel=name,
            channel_type=notifier.name if notifier is not None else "",
            action=notice.action,
            status=status,
            attempts=attempts,
            severity=notice.severity,
            kind=notice.kind,
            title=notice.title,
            dedup_key=notice.dedup_key,
            error=scrub(error, self._secrets),
            hint=scrub(hint, self._secrets),
            retry_in=retry_in,
            deployment_id=notice.deployment_id,
            environment=notice.environment,
            service=notice.service,
        )

    def _emit(self, delivery: Delivery) -> Delivery:
        if delivery.status == "queued":
            log.warning(
                "notification %s on %s not delivered yet (%s): kept in the state store; "
                "`deployops serve` retries it",
                delivery.action,
                delivery.channel,
                delivery.error,
            )
        elif delivery.status in ("failed", "retrying", "rate_limited", "expired"):
            log.warning(
                "notification %s on %s %s: %s",
                delivery.action,
                delivery.channel,
                delivery.status,
                delivery.error,
            )
        if self._record is not None:
            try:
                self._record(delivery)
            except Exception as exc:  # noqa: BLE001 - recording must not break delivery
                log.warning("could not record a notification delivery: %s", type(exc).__name__)
        return delivery


# ---------------------------------------------------------------------- recording
_EVENT_KIND: dict[str, tuple[str, str]] = {
    "sent": ("notify.sent", "info"),
    "failed": ("notify.failed", "error"),
    "retrying": ("notify.retry", "warning"),
    "deduplicated": ("notify.suppressed", "info"),
    "rate_limited": ("notify.suppressed", "warning"),
    "queued": ("notify.queued", "warning"),
    "expired": ("notify.expired", "error"),
}


def store_recorder(store: StateStore, clock: Clock) -> Recorder:
    """A recorder writing each delivery as a store event: ``notify.sent``, ``notify.failed``,
    ``notify.retry``, ``notify.suppressed`` (duplicate or rate-limited), ``notify.queued``
    (kept for the controller to retry) or ``notify.expired``, the delivery as ``data``.
    Visible in ``deployops deployments show`` and the dashboard."""

    def record(d: Delivery) -> None:
        kind, level = _EVENT_KIND[d.status]
        message = f"{d.channel}: {d.action} {d.title!r} {d.status.replace('_', ' ')}"
        if d.attempts > 1:
            message += f" after {d.attempts} attempts"
        if d.error:
            message += f": {d.error}"
        store.add_event(
            EventRecord(
                ts=clock.now(),
                kind=kind,
                message=message,
                level=level,
                deployment_id=d.deployment_id,
                environment=d.environment,
                service=d.service,
                data=d.to_json(),
            )
        )

    return record


# ---------------------------------------------------------------------- building
class _Unavailable(Channel[None]):
    """Stands in for a channel whose settings could not be resolved (``strict=False``):
    every delivery fails with the reason, and is recorded like any other failure."""

    name: ClassVar[str] = "unavailable"

    def __init__(self, *, reason: str, hint: str) -> None:
        self._reason = reason
        self._hint = hint

    def _compose(self, **notice: Any) -> None:
        return None

    def _deliver(self, message: None) -> None:
        raise NotifyError("notify", "configure", self._reason, retryable=False, hint=self._hint)


def build_router(
    config: NotificationsConfig,
    *,
    resolve: Callable[[str], Secret],
    clock: Clock,
    record: Recorder | None = None,
    http: httpx.Client | None = None,
    strict: bool = True,
    outbox: Outbox | None = None,
) -> NotificationRouter:
    """Resolve the channels' secret references (``resolve(name)``, e.g. ``SecretStore.get``)
    and build the notifiers. ``strict`` raises one :class:`ConfigError` listing every channel
    that cannot be built; ``strict=False`` keeps such channels as recorded failures instead, so
    a missing secret never stops a deploy."""
    issues: list[ConfigIssue] = []
    secrets: list[Secret] = []
    owned = http is None
    client = http if http is not None else httpx.Client(follow_redirects=False)
    channels: dict[str, Notifier] = {}

    def secret(ref: str, where: str) -> Secret | None:
        if not ref.startswith(SECRET_PREFIX):
            value = Secret(ref)
        else:
            try:
                value = resolve(secret_name(ref))
            except DeployopsError as exc:
                issues.append(ConfigIssue(where, f"cannot resolve {ref}: {exc.message}"))
                return None
        secrets.append(value)
        return value

    for name, ch in config.channels.items():
        where = f"notifications.channels.{name}"
        before = len(issues)
        notifier: Notifier | None = None
        if isinstance(ch, SlackChannel):
            url = secret(ch.webhook_url, f"{where}.webhook_url")
            problem = check_webhook_url(url.reveal()) if url is not None else None
            if problem:
                issues.append(
                    ConfigIssue(
                        f"{where}.webhook_url",
                        f"the value of {ch.webhook_url} {problem}",
                    )
                )
            elif url is not None:
                notifier = SlackNotifier(
                    webhook_url=url,
                    channel=ch.channel,
                    username=ch.username,
                    http=client,
                    clock=clock,
                    timeout=ch.timeout,
                )
        elif isinstance(ch, EmailChannel):
            password = secret(ch.password, f"{where}.password") if ch.password else None
            if ch.password is None or password is not None:
                notifier = EmailNotifier(
                    smtp_host=ch.smtp_host,
                    smtp_port=ch.smtp_port,
                    sender=ch.sender,
                    to=ch.to,
                    clock=clock,
                    starttls=ch.starttls,
                    username=ch.username,
                    password=password,
                    timeout=ch.timeout,
                )
        elif isinstance(ch, PagerDutyChannel):
            key = secret(ch.routing_key, f"{where}.routing_key")
            if key is not None and not key.reveal().strip():
                issues.append(ConfigIssue(f"{where}.routing_key", f"{ch.routing_key} is empty"))
            elif key is not None:
                notifier = PagerDutyNotifier(
                    routing_key=key,
                    http=client,
                    clock=clock,
                    events_url=ch.events_url,
                    source=ch.source,
                    component=ch.component,
                    group=ch.group,
                    timeout=ch.timeout,
                )
        if notifier is None:
            reasons = "; ".join(i.message for i in issues[before:])
            notifier = _Unavailable(
                reason=f"channel {name!r} is not usable: {reasons}",
                hint="fix the secret it refers to and run `deployops config validate`",
            )
        channels[name] = notifier

    if issues and strict:
        if owned:
            client.close()
        raise ConfigError(
            [ConfigIssue(i.path, scrub(i.message, secrets)) for i in issues],
            hint="store the secret in the environment's secret store, or fix the reference",
        )
    return NotificationRouter(
        config=config,
        channels=channels,
        clock=clock,
        record=record,
        secrets=secrets,
        http=client if owned else None,
        outbox=outbox,
    )
