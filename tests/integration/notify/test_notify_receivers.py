"""MON-2 / DEP-7 against real receivers on loopback: an HTTP server standing for Slack and
PagerDuty checks the exact payloads, a real SMTP server (aiosmtpd) receives the e-mail, and a
receiver that is down is retried and recorded in the state store, never raised."""

from __future__ import annotations

import json
import logging
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployops.clock import Clock, SystemClock, VirtualClock
from deployops.config.notifications import load_notifications
from deployops.errors import NotFoundError
from deployops.notify import Delivery, Notice, NotificationRouter, build_router, store_recorder
from deployops.secret import Secret
from deployops.store import StateStore
from integration.notify.receivers import HttpReceiver, SmtpReceiver, free_port

pytestmark = pytest.mark.integration

KEY = "R0UT1NGKEY-integration-0123456789"
SMTP_PASSWORD = "smtp-pw-never-shown"


def _yaml(http_port: int, smtp_port: int, *, to: str = "oncall@example.com") -> dict[str, Any]:
    text = textwrap.dedent(
        f"""
        channels:
          slack-alerts:
            type: slack
            webhook_url: secret://slack-alerts
            channel: "#alerts"
          slack-deployments:
            type: slack
            webhook_url: secret://slack-deployments
            channel: "#deployments"
          email-oncall:
            type: email
            smtp_host: 127.0.0.1
            smtp_port: {smtp_port}
            from: deployops@example.com
            to: {to}
          pagerduty:
            type: pagerduty
            routing_key: secret://pagerduty-key
            events_url: http://127.0.0.1:{http_port}/v2/enqueue
            component: web
            group: production
        routes:
          critical: [slack-alerts, email-oncall, pagerduty]
          warning: [slack-alerts, email-oncall]
          deployment: [slack-deployments]
        retry: {{attempts: 3, initial_backoff: 50ms, max_backoff: 200ms}}
        rate_limit: {{per_minute: 60, burst: 10}}
        dedup_window: 5m
        """
    )
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


class Secrets:
    def __init__(self, http_port: int) -> None:
        self.values = {
            "slack-alerts": f"http://127.0.0.1:{http_port}/services/T0/B1/ALERTSXYZ",
            "slack-deployments": f"http://127.0.0.1:{http_port}/services/T0/B2/DEPLOYSXYZ",
            "pagerduty-key": KEY,
            "smtp-password": SMTP_PASSWORD,
        }

    def get(self, name: str) -> Secret:
        if name not in self.values:
            raise NotFoundError(f"no secret named {name!r}")
        return Secret(self.values[name])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    s = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


def _router(
    http_receiver: HttpReceiver,
    smtp_port: int,
    store: StateStore,
    clock: Clock,
    **yaml_over: Any,
) -> tuple[NotificationRouter, list[Delivery]]:
    cfg = load_notifications(_yaml(http_receiver.port, smtp_port, **yaml_over))
    seen: list[Delivery] = []
    to_store = store_recorder(store, clock)

    def record(d: Delivery) -> None:
        seen.append(d)
        to_store(d)

    router = build_router(cfg, resolve=Secrets(http_receiver.port).get, clock=clock, record=record)
    return router, seen


def test_mon2_critical_alarm_then_ok_reaches_slack_email_and_pagerduty_exactly(
    http_receiver: HttpReceiver, smtp_receiver: SmtpReceiver, store: StateStore
) -> None:
    clock = VirtualClock()
    router, _seen = _router(http_receiver, smtp_receiver.port, store, clock)
    with router:
        fired = router.notify(
            Notice(
                severity="critical",
                kind="alarm.alarm",
                title="LowHealthyHosts on web",
                text="1 healthy host (threshold 2)",
                fields={"environment": "production", "service": "web"},
                dedup_key="alarm:LowHealthyHosts:web",
            )
        )
        ok = router.notify(
            Notice(
                severity="critical",
                kind="alarm.ok",
                title="LowHealthyHosts on web",
                text="4 healthy hosts",
                dedup_key="alarm:LowHealthyHosts:web",
                resolve=True,
            )
        )
    assert [(d.channel, d.status) for d in fired] == [
        ("slack-alerts", "sent"),
        ("email-oncall", "sent"),
        ("pagerduty", "sent"),
    ]
    assert [(d.channel, d.status, d.action) for d in ok] == [
        ("slack-alerts", "sent", "resolve"),
        ("email-oncall", "sent", "resolve"),
        ("pagerduty", "sent", "resolve"),
    ]

    # PagerDuty Events v2, trigger then resolve with the same dedup_key
    assert http_receiver.bodies("/v2/enqueue") == [
        {
            "routing_key": KEY,
            "event_action": "trigger",
            "dedup_key": "alarm:LowHealthyHosts:web",
            "payload": {
                "summary": "LowHealthyHosts on web",
                "source": "deployops",
                "severity": "critical",
                "component": "web",
                "group": "production",
                "class": "alarm.alarm",
                "custom_details": {
                    "environment": "production",
                    "service": "web",
                    "text": "1 healthy host (threshold 2)",
                },
            },
        },
        {
            "routing_key": KEY,
            "event_action": "resolve",
            "dedup_key": "alarm:LowHealthyHosts:web",
            "payload": {
                "summary": "Resolved: LowHealthyHosts on web",
                "source": "deployops",
                "severity": "critical",
                "component": "web",
                "group": "production",
                "class": "alarm.ok",
                "custom_details": {"text": "4 healthy hosts"},
            },
        },
    ]
    pd_headers = [h for p, h, _b in http_receiver.requests if p == "/v2/enqueue"]
    assert all(h["Content-Type"] == "application/json" for h in pd_headers)

    # Slack Block Kit to #alerts: header, section, fields, context, plus the text fallback
    trigger, resolve = http_receiver.bodies("/services/T0/B1/ALERTSXYZ")
    assert trigger["channel"] == "#alerts"
    assert trigger["text"] == "[CRITICAL] LowHealthyHosts on web: 1 healthy host (threshold 2)"
    assert [b["type"] for b in trigger["blocks"]] == ["header", "section", "section", "context"]
    assert trigger["blocks"][0]["text"]["text"] == ":rotating_light: LowHealthyHosts on web"
    assert trigger["blocks"][2]["fields"] == [
        {"type": "mrkdwn", "text": "*environment*\nproduction"},
        {"type": "mrkdwn", "text": "*service*\nweb"},
    ]
    assert resolve["text"] == "[RESOLVED] LowHealthyHosts on web: 4 healthy hosts"
    assert resolve["blocks"][0]["text"]["text"].startswith(":white_check_mark: Resolved:")

    # the on-call e-mail, through a real SMTP conversation
    (sender, rcpts, alarm_mail), (_s, _r, ok_mail) = smtp_receiver.messages
    assert sender == "deployops@example.com"
    assert rcpts == ["oncall@example.com"]
    assert alarm_mail["Subject"] == "[CRITICAL] LowHealthyHosts on web"
    body = alarm_mail.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert "1 healthy host (threshold 2)" in body.decode()
    assert "environment: production" in body.decode()
    assert ok_mail["Subject"] == "[RESOLVED] LowHealthyHosts on web"

    # every delivery is a store event
    kinds = [e.kind for e in store.events()]
    assert kinds == ["notify.sent"] * 6


def test_mon2_deployment_news_goes_only_to_the_deployments_channel(
    http_receiver: HttpReceiver, smtp_receiver: SmtpReceiver, store: StateStore
) -> None:
    router, _seen = _router(http_receiver, smtp_receiver.port, store, VirtualClock())
    with router:
        out = router.notify(
            Notice(
                severity="info",
                kind="deployment.succeeded",
                title="web 1.4.0 is live in production",
                deployment_id="dep-20260301-120000-abcd",
            )
        )
    assert [(d.channel, d.status) for d in out] == [("slack-deployments", "sent")]
    (body,) = http_receiver.bodies("/services/T0/B2/DEPLOYSXYZ")
    assert body["channel"] == "#deployments"
    assert http_receiver.bodies("/v2/enqueue") == []
    assert smtp_receiver.messages == []
    (event,) = store.events(deployment_id="dep-20260301-120000-abcd")
    assert event.kind == "notify.sent"


def test_mon2_receiver_down_is_retried_then_recorded_and_others_still_deliver(
    http_receiver: HttpReceiver, smtp_receiver: SmtpReceiver, store: StateStore
) -> None:
    """The SMTP server is down (nothing listens on its port): three attempts with real 50 ms /
    100 ms backoff, then ``notify.failed`` in the store; Slack and PagerDuty still deliver."""
    router, seen = _router(http_receiver, free_port(), store, SystemClock())
    with router:
        out = router.notify(
            Notice(
                severity="critical",
                kind="deployment.failed",
                title="web 1.4.0 failed in production",
                text="green never turned healthy; traffic stayed on 1.3.2",
                deployment_id="dep-20260301-120000-abcd",
            )
        )
    statuses = {d.channel: (d.status, d.attempts) for d in out}
    assert statuses == {
        "slack-alerts": ("sent", 1),
        "email-oncall": ("failed", 3),
        "pagerduty": ("sent", 1),
        "slack-deployments": ("sent", 1),
    }
    failed = next(d for d in out if d.status == "failed")
    assert "cannot deliver through 127.0.0.1:" in failed.error
    assert [d.retry_in for d in seen if d.status == "retrying"] == [0.05, 0.1]
    events = store.events(deployment_id="dep-20260301-120000-abcd")
    assert [e.kind for e in events].count("notify.retry") == 2
    (failed_event,) = [e for e in events if e.kind == "notify.failed"]
    assert failed_event.level == "error"
    assert failed_event.message.startswith(
        "email-oncall: trigger 'web 1.4.0 failed in production' failed after 3 attempts:"
    )


def test_mon2_slack_500_then_ok_is_retried_and_pagerduty_429_400_recorded(
    http_receiver: HttpReceiver, smtp_receiver: SmtpReceiver, store: StateStore
) -> None:
    http_receiver.script["/services/T0/B1/ALERTSXYZ"] = [(500, "internal_error", {})]
    http_receiver.script["/v2/enqueue"] = [
        (429, '{"status":"throttle event"}', {"Retry-After": "0"}),
        (400, '{"status":"invalid event","errors":["Event object is invalid"]}', {}),
    ]
    clock = VirtualClock()
    router, _seen = _router(http_receiver, smtp_receiver.port, store, clock)
    with router:
        out = router.notify(
            Notice(severity="critical", kind="alarm.alarm", title="HighErrorRate on web")
        )
    statuses = {d.channel: (d.status, d.attempts) for d in out}
    assert statuses == {
        "slack-alerts": ("sent", 2),
        "email-oncall": ("sent", 1),
        "pagerduty": ("failed", 2),
    }
    pd = next(d for d in out if d.channel == "pagerduty")
    assert "refused the message with 400" in pd.error
    assert "Event object is invalid" in pd.error
    assert len(http_receiver.bodies("/services/T0/B1/ALERTSXYZ")) == 2
    assert [e.kind for e in store.events(kind="notify.failed")] == ["notify.failed"]


def test_mon2_smtp_server_refusing_mail_is_a_recorded_failure(
    http_receiver: HttpReceiver, smtp_receiver: SmtpReceiver, store: StateStore
) -> None:
    router, seen = _router(
        http_receiver, smtp_receiver.port, store, VirtualClock(), to="refuse@example.com"
    )
    with router:
        out = router.notify(
            Notice(severity="warning", kind="alarm.alarm", title="HighCPUUtilization on web")
        )
    email = next(d for d in out if d.channel == "email-oncall")
    assert (email.status, email.attempts) == ("failed", 1)  # 550 is permanent: not retried
    assert "refused every recipient: refuse@example.com: 550" in email.error
    assert email.hint == "check notifications.channels.*.to"
    assert smtp_receiver.messages == []
    assert [d.status for d in seen if d.channel == "slack-alerts"] == ["sent"]


def test_mon2_smtp_temporary_refusal_is_retried(
    http_receiver: HttpReceiver, smtp_receiver: SmtpReceiver, store: StateStore
) -> None:
    router, _seen = _router(
        http_receiver, smtp_receiver.port, store, VirtualClock(), to="busy@example.com"
    )
    with router:
        out = router.notify(
            Notice(severity="warning", kind="alarm.alarm", title="HighCPUUtilization on web")
        )
    email = next(d for d in out if d.channel == "email-oncall")
    assert (email.status, email.attempts) == ("failed", 3)  # 451: tried again, then recorded
    assert "451" in email.error


def test_mon2_no_secret_in_any_recorded_event_or_request_log(
    http_receiver: HttpReceiver,
    store: StateStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    http_receiver.script["/services/T0/B1/ALERTSXYZ"] = [
        (403, "invalid_token for /services/T0/B1/ALERTSXYZ", {})
    ]
    http_receiver.script["/v2/enqueue"] = [(400, f'{{"errors":["routing key {KEY}"]}}', {})]
    router, seen = _router(http_receiver, free_port(), store, VirtualClock())
    with router:
        router.notify(Notice(severity="critical", kind="alarm.alarm", title="LowHealthyHosts"))
    dumped = json.dumps([e.data for e in store.events()]) + " ".join(
        e.message for e in store.events()
    )
    dumped += json.dumps([d.to_json() for d in seen])
    assert len(store.events(kind="notify.failed")) == 3
    for value in (KEY, "ALERTSXYZ", SMTP_PASSWORD):
        assert value not in dumped
        assert value not in caplog.text
    assert "HTTP Request: POST [REDACTED]" in caplog.text  # httpx's own request log
