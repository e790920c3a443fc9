"""Slack incoming webhook with a Block Kit message (MON-2: alarms to #alerts, deployments to
#deployments).

    SlackNotifier(webhook_url=Secret(url), channel="#alerts", http=httpx.Client(), clock=clock)
        .send(severity="critical", title="HighErrorRate", text="5xx above 10/min",
              dedup_key="alarm:HighErrorRate", fields={"service": "web"}, kind="alarm.alarm")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from deployops.clock import Clock
from deployops.notify._channel import Channel
from deployops.notify._http import post_json
from deployops.secret import Secret

__all__ = ["SlackNotifier"]

_EMOJI = {
    "critical": ":rotating_light:",
    "warning": ":warning:",
    "info": ":information_source:",
    "resolved": ":white_check_mark:",
}
# Block Kit limits (api.slack.com/reference/block-kit/blocks): header text 150 chars, section
# text 3000, at most 10 fields of 2000 each. Longer content is cut, not rejected by Slack.
_HEADER_MAX = 150
_TEXT_MAX = 3000
_FIELDS_MAX = 10
_FIELD_MAX = 2000


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class SlackNotifier(Channel[dict[str, Any]]):
    """Posts to one incoming webhook. The URL is a :class:`Secret` (it is the credential)."""

    name: ClassVar[str] = "slack"

    def __init__(
        self,
        *,
        webhook_url: Secret,
        channel: str = "#alerts",
        username: str = "deployops",
        http: httpx.Client,
        clock: Clock,
        timeout: float = 10.0,
    ) -> None:
        self._url = webhook_url
        self.channel = channel
        self.username = username
        self._http = http
        self._clock = clock
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"SlackNotifier(channel={self.channel!r}, webhook_url=[REDACTED])"

    def payload(
        self,
        *,
        severity: str,
        title: str,
        text: str,
        dedup_key: str,
        fields: Mapping[str, str],
        kind: str = "",
        resolved: bool = False,
    ) -> dict[str, Any]:
        """The JSON body: Block Kit ``blocks`` plus a plain ``text`` fallback for
        notifications and clients that do not render blocks."""
        label = "RESOLVED" if resolved else severity.upper()
        emoji = _EMOJI["resolved" if resolved else severity] if severity in _EMOJI else ""
        heading = f"{emoji} {title}".strip() if not resolved else f"{emoji} Resolved: {title}"
        blocks: list[dict[str, Any]] = [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": _cut(heading, _HEADER_MAX), "emoji": True},
            }
        ]
        if text:
            blocks.append(
                {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, _TEXT_MAX)}}
            )
        items = list(fields.items())[:_FIELDS_MAX]
        if items:
            blocks.append(
                {
                    "type": "section",
                    "fields": [
                        {"type": "mrkdwn", "text": _cut(f"*{k}*\n{v}", _FIELD_MAX)}
                        for k, v in items
                    ],
                }
            )
        context = f"severity: *{severity}*"
        if kind:
            context += f" | kind: `{kind}`"
        context += f" | key: `{dedup_key}` | {self._clock.now():%Y-%m-%d %H:%M:%S} UTC"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
        fallback = f"[{label}] {title}" + (f": {text}" if text else "")
        return {
            "channel": self.channel,
            "username": self.username,
            "text": _cut(fallback, _TEXT_MAX),
            "blocks": blocks,
        }

    _compose = payload

    def _deliver(self, body: dict[str, Any]) -> None:
        post_json(
            self._http,
            driver="slack",
            url=self._url,
            body=body,
            timeout=self.timeout,
            hint_4xx="check the webhook (secret) is current and the app is still installed in "
            "the channel",
        )
