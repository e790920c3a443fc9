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
or rollback carries on. :meth:`NotificationRouter.submit` does the same on a background thread,
for callers that must not wait for retries at all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

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
    "Recorder",
    "TokenBucket",
    "build_router",
    "store_recorder",
]

log = logging.getLogger(__name__)

DeliveryStatus = Literal["sent", "failed", "retrying", "deduplicated", "rate_limited"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outcome on one channel. ``retrying`` records a failed attempt that will be tried
    again after ``retry_in`` seconds; ``notify`` returns only final outcomes."""

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
    ) -> None:
        self.config = config
        self.channels = dict(channels)
        self._clock = clock
        self._record = record
        self._secrets = tuple(secrets)
        self._http = http  # closed by close(); owned when build_router created it
        self._locks = {name: threading.Lock() for name in self.channels}
        self._buckets: dict[str, TokenBucket] = {}
        self._sent: dict[tuple[str, str], tuple[str, float]] = {}
        self._state_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

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
        try:
            notice = Notice.of(notice)
        except Exception as exc:  # noqa: BLE001 - a malformed notice must not break a deploy
            log.warning("not a usable notice (%s); nothing sent", type(exc).__name__)
            return []
        out: list[Delivery] = []
        for name in self.route(notice):
            try:
                out.append(self._deliver(name, notice))
            except Exception as exc:  # noqa: BLE001 - a notification must never break a deploy
                delivery = self._delivery(
                    name, notice, "failed", 0, error=f"internal error: {type(exc).__name__}"
                )
                self._emit(delivery)
                out.append(delivery)
        return out

    def submit(self, notice: Notice | NoticeLike) -> Future[list[Delivery]]:
        """:meth:`notify` on a background thread; the caller does not wait for retries."""
        with self._state_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="notify")
            executor = self._executor
        return executor.submit(self.notify, notice)

    def close(self, *, wait: bool = True) -> None:
        """Finish (``wait``) or drop queued background notices; close an owned HTTP client."""
        with self._state_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=not wait)
        if self._http is not None:
            self._http.close()

    def __enter__(self) -> NotificationRouter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ delivery
    def _deliver(self, name: str, notice: Notice) -> Delivery:
        notifier = self.channels[name]
        with self._locks[name]:
            if self._is_duplicate(name, notice):
                return self._emit(self._delivery(name, notice, "deduplicated", 0))
            if not self._bucket(name).take():
                return self._emit(
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
                    return self._emit(self._delivery(name, notice, "sent", attempt))
                if not retryable or attempt >= policy.attempts:
                    return self._emit(
                        self._delivery(name, notice, "failed", attempt, error=error, hint=hint)
                    )
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
        if delivery.status in ("failed", "retrying", "rate_limited"):
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
}


def store_recorder(store: StateStore, clock: Clock) -> Recorder:
    """A recorder writing each delivery as a store event: ``notify.sent``, ``notify.failed``,
    ``notify.retry`` or ``notify.suppressed`` (duplicate or rate-limited), the delivery as
    ``data``. Visible in ``deployops deployments show`` and the dashboard."""

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
    )
