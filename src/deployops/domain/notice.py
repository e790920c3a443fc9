"""A notice: something stakeholders should hear about (DEP-7, RB-2, MON-1, MON-2).

The one notice type of deployops: the engine, the alarm evaluator and the controller build
it; the notification router (:mod:`deployops.notify.router`) routes it to channels.

>>> Notice(severity="critical", kind="alarm.alarm", title="LowHealthyHosts").dedup_key
'alarm.alarm:LowHealthyHosts'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast

__all__ = ["SEVERITIES", "Notice", "NoticeLike", "Severity"]

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")


@dataclass(frozen=True, slots=True)
class Notice:
    """Something people should hear about.

    ``kind`` is ``family.event`` (``deployment.failed``, ``alarm.alarm``, ``alarm.ok``,
    ``rollback.succeeded``, ``decision``...). ``dedup_key`` identifies the incident: the same key
    and action are not re-sent within the dedup window, and a ``resolve=True`` notice with the
    same key (and the same severity, so it reaches the same channels) closes it.
    """

    severity: Severity
    kind: str
    title: str
    text: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)
    dedup_key: str = ""
    resolve: bool = False
    deployment_id: str | None = None
    environment: str = ""
    service: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
        if not self.dedup_key:
            object.__setattr__(self, "dedup_key", f"{self.kind}:{self.title}")

    @property
    def action(self) -> Literal["trigger", "resolve"]:
        return "resolve" if self.resolve else "trigger"

    def to_json(self) -> dict[str, Any]:
        """The notice as JSON (kept with an undelivered notice; :meth:`from_json` reads it)."""
        return {
            "severity": self.severity,
            "kind": self.kind,
            "title": self.title,
            "text": self.text,
            "fields": dict(self.fields),
            "dedup_key": self.dedup_key,
            "resolve": self.resolve,
            "deployment_id": self.deployment_id,
            "environment": self.environment,
            "service": self.service,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Notice:
        severity = str(data.get("severity", "warning"))
        return cls(
            severity=cast(Severity, severity if severity in SEVERITIES else "warning"),
            kind=str(data.get("kind", "")),
            title=str(data.get("title", "")),
            text=str(data.get("text", "")),
            fields={str(k): str(v) for k, v in dict(data.get("fields") or {}).items()},
            dedup_key=str(data.get("dedup_key", "")),
            resolve=bool(data.get("resolve", False)),
            deployment_id=data.get("deployment_id") or None,
            environment=str(data.get("environment") or ""),
            service=str(data.get("service") or ""),
        )

    @classmethod
    def of(cls, notice: NoticeLike) -> Notice:
        """A :class:`Notice` from any object with the same attributes. An unknown severity
        is treated as ``warning``: a caller's slip must not silence a notification."""
        if isinstance(notice, Notice):
            return notice
        severity = notice.severity if notice.severity in SEVERITIES else "warning"
        return cls(
            severity=cast(Severity, severity),
            kind=notice.kind,
            title=notice.title,
            text=notice.text,
            fields=dict(notice.fields),
            dedup_key=notice.dedup_key,
            resolve=notice.resolve,
            deployment_id=getattr(notice, "deployment_id", None),
            environment=getattr(notice, "environment", "") or "",
            service=getattr(notice, "service", "") or "",
        )


class NoticeLike(Protocol):
    """What the router needs of a notice."""

    @property
    def severity(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def dedup_key(self) -> str: ...
    @property
    def fields(self) -> Mapping[str, str]: ...
    @property
    def resolve(self) -> bool: ...
