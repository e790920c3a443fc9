"""What each channel puts on the wire (MON-2): Slack Block Kit with a text fallback, PagerDuty
Events v2 trigger and resolve, the on-call e-mail. Checked exactly, against httpx's own mock
transport (the real receivers are in tests/integration/notify)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from deployops.clock import VirtualClock
from deployops.notify import EmailNotifier, NotifyError, PagerDutyNotifier, SlackNotifier
from deployops.secret import Secret

HOOK = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX"
KEY = "R0UT1NGKEY-very-secret-0123456789"


def _clock() -> VirtualClock:
    return VirtualClock(datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC))


class Capture:
    def __init__(self, *responses: httpx.Response) -> None:
        self.requests: list[httpx.Request] = []
        self._responses = list(responses)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._responses.pop(0) if self._responses else httpx.Response(200, text="ok")

    def bodies(self) -> list[object]:
        return [json.loads(r.content) for r in self.requests]


def test_mon2_slack_block_kit_payload_exact() -> None:
    cap = Capture()
    slack = SlackNotifier(
        webhook_url=Secret(HOOK),
        channel="#alerts",
        http=httpx.Client(transport=httpx.MockTransport(cap)),
        clock=_clock(),
    )
    slack.send(
        severity="critical",
        title="HighErrorRate on web",
        text="5xx at 14/min (threshold 10/min)",
        dedup_key="alarm:HighErrorRate:web",
        fields={"environment": "production", "version": "1.4.0"},
        kind="alarm.alarm",
    )
    (req,) = cap.requests
    assert str(req.url) == HOOK
    assert req.method == "POST"
    assert req.headers["content-type"] == "application/json"
    assert cap.bodies() == [
        {
            "channel": "#alerts",
            "username": "deployops",
            "text": "[CRITICAL] HighErrorRate on web: 5xx at 14/min (threshold 10/min)",
            "blocks": [
                {
                    "type": "header",
                    "text": {
                        "type": "plain_text",
                        "text": ":rotating_light: HighErrorRate on web",
                        "emoji": True,
                    },
                },
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": "5xx at 14/min (threshold 10/min)"},
                },
                {
                    "type": "section",
                    "fields": [
                        {"type": "mrkdwn", "text": "*environment*\nproduction"},
                        {"type": "mrkdwn", "text": "*version*\n1.4.0"},
                    ],
                },
                {
                    "type": "context",
                    "elements": [
                        {
                            "type": "mrkdwn",
                            "text": "severity: *critical* | kind: `alarm.alarm` | "
                            "key: `alarm:HighErrorRate:web` | 2026-03-01 12:00:00 UTC",
                        }
                    ],
                },
            ],
        }
    ]


def test_mon2_slack_resolve_and_block_kit_limits() -> None:
    cap = Capture()
    slack = SlackNotifier(
        webhook_url=Secret(HOOK),
        channel="#alerts",
        http=httpx.Client(transport=httpx.MockTransport(cap)),
        clock=_clock(),
    )
    fields = {f"f{i}": "v" for i in range(15)}
    slack.resolve(dedup_key="k", title="T" * 400, severity="critical", fields=fields)
    (body,) = cap.bodies()
    assert isinstance(body, dict)
    header = body["blocks"][0]["text"]["text"]
    assert header.startswith(":white_check_mark: Resolved: TTT")
    assert len(header) == 150  # Block Kit's header limit
    assert len(body["blocks"][1]["fields"]) == 10  # Block Kit's field limit
    assert body["text"].startswith("[RESOLVED] TTT")


def test_mon2_pagerduty_trigger_and_resolve_events_v2_exact() -> None:
    cap = Capture(
        httpx.Response(202, json={"status": "success", "dedup_key": "alarm:LowHealthyHosts"}),
        httpx.Response(202, json={"status": "success", "dedup_key": "alarm:LowHealthyHosts"}),
    )
    pd = PagerDutyNotifier(
        routing_key=Secret(KEY),
        http=httpx.Client(transport=httpx.MockTransport(cap)),
        clock=_clock(),
        component="web",
        group="production",
    )
    pd.send(
        severity="critical",
        title="LowHealthyHosts on web",
        text="1 healthy host (threshold 2)",
        dedup_key="alarm:LowHealthyHosts",
        fields={"environment": "production"},
        kind="alarm.alarm",
    )
    pd.resolve(
        dedup_key="alarm:LowHealthyHosts",
        title="LowHealthyHosts on web",
        severity="critical",
        kind="alarm.ok",
    )
    assert [str(r.url) for r in cap.requests] == ["https://events.pagerduty.com/v2/enqueue"] * 2
    assert cap.bodies() == [
        {
            "routing_key": KEY,
            "event_action": "trigger",
            "dedup_key": "alarm:LowHealthyHosts",
            "payload": {
                "summary": "LowHealthyHosts on web",
                "source": "deployops",
                "severity": "critical",
                "component": "web",
                "group": "production",
                "class": "alarm.alarm",
                "custom_details": {
                    "environment": "production",
                    "text": "1 healthy host (threshold 2)",
                },
            },
        },
        {
            "routing_key": KEY,
            "event_action": "resolve",
            "dedup_key": "alarm:LowHealthyHosts",
            "payload": {
                "summary": "Resolved: LowHealthyHosts on web",
                "source": "deployops",
                "severity": "critical",
                "component": "web",
                "group": "production",
                "class": "alarm.ok",
                "custom_details": {},
            },
        },
    ]


@pytest.mark.parametrize(
    ("status", "retryable"), [(400, False), (403, False), (429, True), (500, True), (503, True)]
)
def test_mon2_pagerduty_refusals_are_driver_errors_without_the_key(
    status: int, retryable: bool
) -> None:
    # A receiver that echoes the key back must not get it into our error.
    cap = Capture(
        httpx.Response(status, json={"status": "invalid", "errors": [f"bad key {KEY}"]}),
    )
    pd = PagerDutyNotifier(
        routing_key=Secret(KEY),
        http=httpx.Client(transport=httpx.MockTransport(cap)),
        clock=_clock(),
    )
    with pytest.raises(NotifyError) as info:
        pd.send(severity="critical", title="t", text="", dedup_key="k", fields={})
    assert info.value.retryable is retryable
    assert info.value.status == status
    assert KEY not in str(info.value)
    assert str(status) in str(info.value)
    assert KEY not in repr(pd)


def test_mon2_slack_429_carries_retry_after() -> None:
    cap = Capture(httpx.Response(429, headers={"Retry-After": "7"}, text="rate_limited"))
    slack = SlackNotifier(
        webhook_url=Secret(HOOK),
        http=httpx.Client(transport=httpx.MockTransport(cap)),
        clock=_clock(),
    )
    with pytest.raises(NotifyError) as info:
        slack.send(severity="warning", title="t", text="", dedup_key="k", fields={})
    assert info.value.retryable
    assert info.value.retry_after == 7.0
    assert HOOK not in str(info.value)
    assert HOOK not in repr(slack)


def test_mon2_email_message_subject_and_body() -> None:
    mail = EmailNotifier(
        smtp_host="127.0.0.1",
        smtp_port=2525,
        sender="deployops@example.com",
        to=("oncall@example.com", "sre@example.com"),
        clock=_clock(),
        username="deployops",
        password=Secret("hunter2-hunter2"),
    )
    msg = mail.message(
        severity="warning",
        title="HighCPUUtilization on web",
        text="CPU 83 % for 2 periods",
        dedup_key="alarm:HighCPUUtilization",
        fields={"environment": "production", "threshold": "80 %"},
        kind="alarm.alarm",
    )
    assert msg["Subject"] == "[WARNING] HighCPUUtilization on web"
    assert msg["To"] == "oncall@example.com, sre@example.com"
    assert msg["Date"] == "Sun, 01 Mar 2026 12:00:00 +0000"
    assert msg.get_content() == (
        "HighCPUUtilization on web\n\nCPU 83 % for 2 periods\n\n"
        "environment: production\nthreshold  : 80 %\n\n"
        "severity: warning\nkind: alarm.alarm\ndedup key: alarm:HighCPUUtilization\n"
    )
    resolved = mail.message(
        severity="warning",
        title="HighCPUUtilization on web",
        text="",
        dedup_key="k",
        fields={},
        resolved=True,
    )
    assert resolved["Subject"] == "[RESOLVED] HighCPUUtilization on web"
    assert "hunter2" not in repr(mail)
