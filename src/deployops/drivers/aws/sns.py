"""``SnsNotifier``: the ``Notifier`` port on an SNS topic (alarm actions, MON-2).

The message is JSON with ``severity``, ``title``, ``text``, ``kind``, ``dedup_key`` and the
fields, so an e-mail subscriber reads it and a Lambda or chat integration can route it. The
subject is the title (SNS limits it to 100 characters).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from deployops.drivers.aws._errors import map_aws_errors

__all__ = ["SnsNotifier"]


class SnsNotifier:
    name: ClassVar[str] = "sns"

    def __init__(self, *, client: Any, topic_arn: str) -> None:
        self.client = client
        self.topic_arn = topic_arn

    def send(
        self,
        *,
        severity: str,
        title: str,
        text: str,
        dedup_key: str,
        fields: Mapping[str, str],
        kind: str = "",
    ) -> None:
        self._publish("trigger", severity, title, text, dedup_key, fields, kind)

    def resolve(
        self,
        *,
        dedup_key: str,
        title: str,
        text: str = "",
        severity: str = "info",
        fields: Mapping[str, str] | None = None,
        kind: str = "",
    ) -> None:
        self._publish("resolve", severity, f"Resolved: {title}", text, dedup_key, fields, kind)

    def _publish(
        self,
        action: str,
        severity: str,
        title: str,
        text: str,
        dedup_key: str,
        fields: Mapping[str, str] | None,
        kind: str,
    ) -> str:
        body = {
            "action": action,
            "severity": severity,
            "title": title,
            "text": text,
            "kind": kind,
            "dedup_key": dedup_key,
            "fields": dict(fields or {}),
        }
        with map_aws_errors("sns:Publish", resource=self.topic_arn, driver="sns"):
            raw = self.client.publish(
                TopicArn=self.topic_arn,
                Subject=_subject(title),
                Message=json.dumps(body, sort_keys=True),
                MessageAttributes={
                    "severity": {"DataType": "String", "StringValue": severity},
                    "action": {"DataType": "String", "StringValue": action},
                },
            )
        return str(raw.get("MessageId", ""))


def _subject(title: str) -> str:
    # SNS: ASCII printable, no newlines, at most 100 characters.
    clean = "".join(c if 32 <= ord(c) < 127 else "?" for c in title.replace("\n", " "))
    return clean[:100] or "deployops"
