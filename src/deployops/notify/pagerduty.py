"""PagerDuty Events API v2 (MON-2: critical alerts only; ``trigger`` then ``resolve`` with the
same ``dedup_key`` when the alarm returns to OK).

    PagerDutyNotifier(routing_key=Secret(key), http=httpx.Client(), clock=clock)
        .send(severity="critical", title="LowHealthyHosts", text="1 healthy host",
              dedup_key="alarm:LowHealthyHosts", fields={}, kind="alarm.alarm")

Body (developer.pagerduty.com, "Send an Alert Event")::

    {"routing_key", "event_action": "trigger"|"resolve", "dedup_key",
     "payload": {"summary", "source", "severity", "component", "group", "class",
                 "custom_details"}}

PagerDuty answers 202; 400 means the event is invalid (not retried), 429 means too many events
for this routing key (retried after backoff).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from deployops.clock import Clock
from deployops.config.notifications import PAGERDUTY_EVENTS_URL
from deployops.notify._channel import Channel
from deployops.notify._http import post_json
from deployops.secret import Secret

__all__ = ["PagerDutyNotifier"]

_SEVERITIES = ("critical", "error", "warning", "info")
_SUMMARY_MAX = 1024  # Events v2 truncates longer summaries
_DEDUP_MAX = 255


class PagerDutyNotifier(Channel[dict[str, Any]]):
    """One PagerDuty service integration. The routing (integration) key is a :class:`Secret`."""

    name: ClassVar[str] = "pagerduty"

    def __init__(
        self,
        *,
        routing_key: Secret,
        http: httpx.Client,
        clock: Clock,
        events_url: str = PAGERDUTY_EVENTS_URL,
        source: str = "deployops",
        component: str = "",
        group: str = "",
        timeout: float = 10.0,
    ) -> None:
        self._key = routing_key
        self._http = http
        self._clock = clock
        self.events_url = events_url
        self.source = source
        self.component = component
        self.group = group
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"PagerDutyNotifier(events_url={self.events_url!r}, routing_key=[REDACTED])"

    def event(
        self,
        *,
        action: str,
        severity: str,
        title: str,
        text: str,
        dedup_key: str,
        fields: Mapping[str, str],
        kind: str,
    ) -> dict[str, Any]:
        """The Events v2 body, with the routing key (a dict that must not be logged)."""
        details: dict[str, str] = dict(fields)
        if text:
            details["text"] = text
        summary = f"Resolved: {title}" if action == "resolve" else title
        return {
            "routing_key": self._key.reveal(),
            "event_action": action,
            "dedup_key": dedup_key[:_DEDUP_MAX],
            "payload": {
                "summary": summary[:_SUMMARY_MAX],
                "source": self.source,
                "severity": severity if severity in _SEVERITIES else "critical",
                "component": self.component,
                "group": self.group,
                "class": kind,
                "custom_details": details,
            },
        }

    def _compose(
        self,
        *,
        severity: str,
        title: str,
        text: str,
        dedup_key: str,
        fields: Mapping[str, str],
        kind: str,
        resolved: bool,
    ) -> dict[str, Any]:
        return self.event(
            action="resolve" if resolved else "trigger",
            severity=severity,
            title=title,
            text=text,
            dedup_key=dedup_key,
            fields=fields,
            kind=kind,
        )

    def _deliver(self, body: dict[str, Any]) -> None:
        post_json(
            self._http,
            driver="pagerduty",
            url=Secret(self.events_url),
            body=body,
            timeout=self.timeout,
            secrets=(self._key,),
            url_is_secret=False,
            hint_4xx="check the routing key (secret) belongs to an Events API v2 integration",
        )
