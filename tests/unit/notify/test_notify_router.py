"""The router (MON-2, DEP-7): routing by severity and kind, retries with capped backoff on the
virtual clock, a per-channel rate limit, deduplication, resolve, and a channel that is down
being recorded rather than raised. Slack and PagerDuty are reached through httpx's mock
transport; the real receivers are exercised in tests/integration/notify."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from deployops.clock import VirtualClock
from deployops.config.notifications import NotificationsConfig, load_notifications
from deployops.errors import ConfigError, NotFoundError
from deployops.notify import Delivery, Notice, NotificationRouter, build_router, store_recorder
from deployops.secret import Secret
from deployops.store import StateStore

ALERTS = "https://hooks.slack.com/services/T0/B1/ALERTSSECRET"
DEPLOYS = "https://hooks.slack.com/services/T0/B2/DEPLOYSSECRET"
PD_URL = "https://events.pagerduty.com/v2/enqueue"
KEY = "R0UT1NGKEY-very-secret-0123456789"
SECRETS = {"slack-alerts": ALERTS, "slack-deployments": DEPLOYS, "pagerduty-key": KEY}


def _resolve(name: str) -> Secret:
    try:
        return Secret(SECRETS[name])
    except KeyError:
        raise NotFoundError(f"no secret named {name!r}") from None


def _config(**over: Any) -> NotificationsConfig:
    raw: dict[str, Any] = {
        "channels": {
            "slack-alerts": {"type": "slack", "webhook_url": "secret://slack-alerts"},
            "slack-deployments": {
                "type": "slack",
                "webhook_url": "secret://slack-deployments",
                "channel": "#deployments",
            },
            "pagerduty": {"type": "pagerduty", "routing_key": "secret://pagerduty-key"},
        },
        "routes": {
            "critical": ["slack-alerts", "pagerduty"],
            "warning": ["slack-alerts"],
            "deployment": ["slack-deployments"],
        },
        "retry": {"attempts": 4, "initial_backoff": "1s", "max_backoff": "5s"},
        "rate_limit": {"per_minute": 6, "burst": 3},
        "dedup_window": "5m",
    }
    raw.update(over)
    return load_notifications(raw)


class Receiver:
    """Answers per URL from a script; records what it was sent."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.script: dict[str, list[httpx.Response]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.seen.append((url, json.loads(request.content)))
        queue = self.script.get(url)
        if queue:
            return queue.pop(0)
        if url == PD_URL:
            return httpx.Response(202, json={"status": "success"})
        return httpx.Response(200, text="ok")

    def urls(self) -> list[str]:
        return [u for u, _ in self.seen]


@pytest.fixture
def env() -> tuple[Receiver, VirtualClock, list[Delivery], NotificationRouter]:
    receiver = Receiver()
    clock = VirtualClock()
    recorded: list[Delivery] = []
    router = build_router(
        _config(),
        resolve=_resolve,
        clock=clock,
        record=recorded.append,
        http=httpx.Client(transport=httpx.MockTransport(receiver)),
    )
    return receiver, clock, recorded, router


Env = tuple[Receiver, VirtualClock, list[Delivery], NotificationRouter]


def _alarm(**over: Any) -> Notice:
    args: dict[str, Any] = {
        "severity": "critical",
        "kind": "alarm.alarm",
        "title": "LowHealthyHosts on web",
        "text": "1 healthy host",
        "dedup_key": "alarm:LowHealthyHosts:web",
    }
    args.update(over)
    return Notice(**args)


def test_mon2_critical_goes_to_slack_alerts_and_pagerduty_then_resolves(env: Env) -> None:
    receiver, _clock, recorded, router = env
    sent = router.notify(_alarm())
    assert [(d.channel, d.status, d.action) for d in sent] == [
        ("slack-alerts", "sent", "trigger"),
        ("pagerduty", "sent", "trigger"),
    ]
    assert receiver.urls() == [ALERTS, PD_URL]

    ok = router.notify(_alarm(kind="alarm.ok", text="2 healthy hosts", resolve=True))
    assert [(d.channel, d.status, d.action) for d in ok] == [
        ("slack-alerts", "sent", "resolve"),
        ("pagerduty", "sent", "resolve"),
    ]
    pd_bodies = [b for u, b in receiver.seen if u == PD_URL]
    assert [(b["event_action"], b["dedup_key"]) for b in pd_bodies] == [
        ("trigger", "alarm:LowHealthyHosts:web"),
        ("resolve", "alarm:LowHealthyHosts:web"),
    ]
    assert recorded == [*sent, *ok]


def test_mon2_pagerduty_never_gets_warnings_or_deployment_news(env: Env) -> None:
    receiver, _clock, _recorded, router = env
    router.notify(_alarm(severity="warning", title="HighCPUUtilization"))
    router.notify(Notice(severity="info", kind="deployment.succeeded", title="web 1.4.0 is live"))
    assert PD_URL not in receiver.urls()
    assert receiver.urls() == [ALERTS, DEPLOYS]
    deploy_body = receiver.seen[1][1]
    assert deploy_body["channel"] == "#deployments"


def test_dep7_deployment_failure_reaches_alerts_and_deployments(env: Env) -> None:
    receiver, _clock, _recorded, router = env
    out = router.notify(
        Notice(
            severity="warning",
            kind="deployment.failed",
            title="web 1.4.0 failed in production",
            text="green never turned healthy",
            deployment_id="dep-20260301-120000-abcd",
        )
    )
    assert [d.channel for d in out] == ["slack-alerts", "slack-deployments"]
    assert all(d.deployment_id == "dep-20260301-120000-abcd" for d in out)
    assert receiver.urls() == [ALERTS, DEPLOYS]


def test_mon2_retries_with_capped_exponential_backoff_on_the_clock(env: Env) -> None:
    receiver, clock, recorded, router = env
    receiver.script[ALERTS] = [httpx.Response(503, text="down")] * 3
    start = clock.monotonic()
    (slack, _pd) = router.notify(_alarm())
    assert slack.status == "sent"
    assert slack.attempts == 4
    # 1s, 2s, 4s between attempts (cap 5s not reached)
    retries = [d for d in recorded if d.status == "retrying"]
    assert [d.retry_in for d in retries] == [1.0, 2.0, 4.0]
    assert all("503" in d.error for d in retries)
    assert clock.monotonic() - start == 7.0


def test_mon2_down_channel_is_recorded_failed_and_never_raises(env: Env) -> None:
    receiver, clock, recorded, router = env
    receiver.script[ALERTS] = [httpx.Response(500, text="boom")] * 10
    out = router.notify(_alarm())
    slack, pd = out
    assert (slack.status, slack.attempts) == ("failed", 4)
    assert "500" in slack.error
    assert pd.status == "sent"  # one channel down does not hold back the others
    assert [d.retry_in for d in recorded if d.status == "retrying"] == [1.0, 2.0, 4.0]
    assert clock.monotonic() == 7.0


def test_mon2_pagerduty_400_fails_at_once_and_429_honours_retry_after(env: Env) -> None:
    receiver, clock, recorded, router = env
    receiver.script[PD_URL] = [httpx.Response(400, json={"status": "invalid event"})]
    (_slack, pd) = router.notify(_alarm())
    assert (pd.status, pd.attempts) == ("failed", 1)
    assert "refused the message with 400" in pd.error
    assert pd.hint.startswith("check the routing key")

    receiver.script[PD_URL] = [httpx.Response(429, headers={"Retry-After": "3"}, text="slow")]
    (_slack, pd) = router.notify(_alarm(dedup_key="other"))
    assert (pd.status, pd.attempts) == ("sent", 2)
    assert [d.retry_in for d in recorded if d.status == "retrying"] == [3.0]
    assert clock.monotonic() == 3.0


def test_mon2_duplicates_within_the_window_are_not_resent(env: Env) -> None:
    receiver, clock, _recorded, router = env
    router.notify(_alarm())
    again = router.notify(_alarm())
    assert [d.status for d in again] == ["deduplicated", "deduplicated"]
    assert len(receiver.seen) == 2
    assert all(d.ok for d in again)

    # resolve, then the alarm fires again: a new incident, sent even inside the window
    router.notify(_alarm(resolve=True))
    refire = router.notify(_alarm())
    assert [d.status for d in refire] == ["sent", "sent"]

    clock.advance(301)
    later = router.notify(_alarm())
    assert [d.status for d in later] == ["sent", "sent"]


def test_mon2_failed_delivery_is_not_remembered_as_sent(env: Env) -> None:
    receiver, _clock, _recorded, router = env
    receiver.script[ALERTS] = [httpx.Response(404, text="no_service")]
    (first, _pd) = router.notify(_alarm())
    assert first.status == "failed"
    (second, _pd) = router.notify(_alarm())
    assert second.status == "sent"


def test_mon2_per_channel_token_bucket_rate_limit(env: Env) -> None:
    receiver, clock, recorded, router = env
    out = [router.notify(_alarm(severity="warning", dedup_key=f"k{i}"))[0] for i in range(5)]
    assert [d.status for d in out] == ["sent", "sent", "sent", "rate_limited", "rate_limited"]
    assert "dropped" in out[3].error
    # 6/min refills one token every 10 s
    clock.advance(10)
    assert router.notify(_alarm(severity="warning", dedup_key="k9"))[0].status == "sent"
    assert router.notify(_alarm(severity="warning", dedup_key="k10"))[0].status == "rate_limited"
    # other channels have their own bucket
    news = Notice(severity="info", kind="deployment.started", title="deploying web 1.4.0")
    assert router.notify(news)[0].status == "sent"
    assert len(receiver.seen) == 5
    assert sum(d.status == "rate_limited" for d in recorded) == 3


def test_mon2_secrets_never_appear_in_deliveries_records_or_logs(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver, _clock, recorded, router = env
    # receivers that echo what they got back into their error body
    receiver.script[ALERTS] = [httpx.Response(400, text=f"invalid_payload for {ALERTS}")]
    receiver.script[PD_URL] = [httpx.Response(400, text=f"bad routing_key {KEY}")]
    out = router.notify(_alarm())
    assert [d.status for d in out] == ["failed", "failed"]
    dumped = json.dumps([d.to_json() for d in recorded]) + repr(recorded) + repr(router.channels)
    for value in (ALERTS, KEY, "ALERTSSECRET"):
        assert value not in dumped
        assert value not in caplog.text
    assert "[REDACTED]" in dumped


def test_mon2_a_missing_secret_is_a_config_error_naming_every_channel() -> None:
    cfg = _config(
        channels={
            "slack-alerts": {"type": "slack", "webhook_url": "secret://nope"},
            "pagerduty": {"type": "pagerduty", "routing_key": "secret://also-nope"},
        },
        routes={"critical": ["slack-alerts", "pagerduty"]},
    )
    with pytest.raises(ConfigError) as info:
        build_router(cfg, resolve=_resolve, clock=VirtualClock())
    paths = [i.path for i in info.value.issues]
    assert paths == [
        "notifications.channels.slack-alerts.webhook_url",
        "notifications.channels.pagerduty.routing_key",
    ]
    assert "cannot resolve secret://nope: no secret named 'nope'" in str(info.value)


def test_mon2_a_secret_holding_a_plain_http_url_is_refused_without_showing_it() -> None:
    leaky = "http://hooks.example.com/services/T/B/PLAINHTTPSECRET"
    cfg = _config(
        channels={"slack-alerts": {"type": "slack", "webhook_url": "secret://slack-alerts"}},
        routes={"warning": ["slack-alerts"]},
    )
    with pytest.raises(ConfigError) as info:
        build_router(cfg, resolve=lambda _name: Secret(leaky), clock=VirtualClock())
    text = str(info.value)
    assert "the value of secret://slack-alerts must use https" in text
    assert "PLAINHTTPSECRET" not in text


def test_dep7_unusable_channel_in_lenient_mode_is_a_recorded_failure() -> None:
    cfg = _config(
        channels={
            "slack-alerts": {"type": "slack", "webhook_url": "secret://nope"},
            "pagerduty": {"type": "pagerduty", "routing_key": "secret://pagerduty-key"},
        },
        routes={"critical": ["slack-alerts", "pagerduty"]},
    )
    receiver = Receiver()
    recorded: list[Delivery] = []
    router = build_router(
        cfg,
        resolve=_resolve,
        clock=VirtualClock(),
        record=recorded.append,
        http=httpx.Client(transport=httpx.MockTransport(receiver)),
        strict=False,
    )
    slack, pd = router.notify(_alarm())
    assert slack.status == "failed"
    assert "cannot resolve secret://nope" in slack.error
    assert pd.status == "sent"
    assert recorded == [slack, pd]


def test_dep7_a_recorder_that_fails_does_not_stop_delivery(env: Env) -> None:
    receiver, clock, _recorded, _router = env

    def broken(_d: Delivery) -> None:
        raise RuntimeError("disk full")

    router = build_router(
        _config(),
        resolve=_resolve,
        clock=clock,
        record=broken,
        http=httpx.Client(transport=httpx.MockTransport(receiver)),
    )
    assert [d.status for d in router.notify(_alarm())] == ["sent", "sent"]


def test_dep7_submit_delivers_in_the_background(env: Env) -> None:
    receiver, _clock, _recorded, router = env
    future = router.submit(_alarm())
    assert [d.status for d in future.result(timeout=10)] == ["sent", "sent"]
    router.close()
    assert len(receiver.seen) == 2


def test_mon2_store_recorder_keeps_sent_and_failed_as_events(tmp_path: Path) -> None:
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    receiver = Receiver()
    receiver.script[PD_URL] = [httpx.Response(400, text="invalid")]
    clock = VirtualClock()
    router = build_router(
        _config(),
        resolve=_resolve,
        clock=clock,
        record=store_recorder(store, clock),
        http=httpx.Client(transport=httpx.MockTransport(receiver)),
    )
    router.notify(_alarm(deployment_id="dep-20260301-120000-abcd", environment="production"))
    events = store.events(deployment_id="dep-20260301-120000-abcd")
    assert [(e.kind, e.level) for e in events] == [
        ("notify.sent", "info"),
        ("notify.failed", "error"),
    ]
    failed = events[1]
    assert failed.message.startswith("pagerduty: trigger 'LowHealthyHosts on web' failed:")
    assert failed.data["channel_type"] == "pagerduty"
    assert failed.environment == "production"
    assert KEY not in json.dumps([e.data for e in events])
    store.close()


def test_dep7_router_takes_the_engines_own_notice(env: Env) -> None:
    from deployops.engine.events import Notice as EngineNotice

    receiver, _clock, _recorded, router = env
    out = router.notify(
        EngineNotice(
            severity="critical",
            kind="deployment.rolled_back",
            title="web 1.4.0 rolled back in production",
            text="error rate 7 % > 5 % for 5 min (RB-1)",
            dedup_key="deployment:dep-1",
        )
    )
    assert [(d.channel, d.status) for d in out] == [
        ("slack-alerts", "sent"),
        ("pagerduty", "sent"),
        ("slack-deployments", "sent"),
    ]
    pd_body = next(b for u, b in receiver.seen if u == PD_URL)
    assert pd_body["payload"]["class"] == "deployment.rolled_back"
    assert pd_body["dedup_key"] == "deployment:dep-1"
