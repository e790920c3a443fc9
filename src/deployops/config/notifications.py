"""The ``notifications:`` section of ``deployops.yaml`` (MON-2, DEP-7).

Channels say *how* to reach people (Slack incoming webhook, e-mail over SMTP, PagerDuty Events
v2); routes say *who hears what*, by severity (``info``/``warning``/``critical``) and by event
kind (``deployment``, ``alarm.alarm``, ...). Webhook URLs, passwords and routing keys are secret
references (``secret://NAME``) resolved late through the secret store, never values in the file.

>>> cfg = NotificationsConfig.model_validate({
...     "channels": {"slack-alerts": {"type": "slack", "webhook_url": "secret://slack-alerts"}},
...     "routes": {"warning": ["slack-alerts"]},
... })
>>> cfg.channels_for(severity="warning", kind="alarm.alarm")
('slack-alerts',)
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from deployops.config.durations import Duration
from deployops.errors import ConfigError, ConfigIssue

__all__ = [
    "KIND_FAMILIES",
    "PAGERDUTY_EVENTS_URL",
    "SECRET_PREFIX",
    "SEVERITIES",
    "ChannelConfig",
    "EmailChannel",
    "NotificationsConfig",
    "PagerDutyChannel",
    "RateLimitPolicy",
    "RedeliveryPolicy",
    "RetryPolicy",
    "SlackChannel",
    "check_webhook_url",
    "is_loopback_host",
    "is_secret_ref",
    "load_notifications",
    "secret_name",
]

SECRET_PREFIX = "secret://"  # noqa: S105 - a URL scheme, not a password
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
# The first part of an event kind (``deployment.failed`` -> ``deployment``). Routes may name a
# family or a full kind; a typo (``deploymnet``) is a config error, not a silent non-route.
KIND_FAMILIES: tuple[str, ...] = (
    "alarm",
    "backup",
    "decision",
    "deployment",
    "drill",
    "restore",
    "rollback",
    "rotation",
    "scaling",
)
_SECRET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,127}$")
_KIND = re.compile(r"^([a-z_]+)(\.[a-z_]+)?$")
_CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def is_secret_ref(value: str) -> bool:
    """``secret://NAME`` with a plausible name."""
    return value.startswith(SECRET_PREFIX) and bool(
        _SECRET_NAME.match(value.removeprefix(SECRET_PREFIX))
    )


def secret_name(ref: str) -> str:
    """``secret://slack-alerts`` -> ``slack-alerts``."""
    return ref.removeprefix(SECRET_PREFIX)


def is_loopback_host(host: str) -> bool:
    """``localhost``, ``127.0.0.0/8`` or ``::1``: the only hosts plain http is allowed to."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_webhook_url(url: str) -> str | None:
    """Why ``url`` is not acceptable as a webhook/events URL, or ``None`` if it is.

    The reason never repeats the URL: a Slack webhook URL is itself a credential.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "is not a URL"
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        return "is not an http(s) URL"
    if parts.scheme == "http" and not is_loopback_host(host):
        return "must use https (plain http is allowed only to a loopback address, for tests)"
    return None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _require_secret_ref(value: str | None, what: str) -> str | None:
    if value is None or is_secret_ref(value):
        return value
    # Deliberately not echoing the value: it may be the credential itself.
    raise ValueError(
        f"{what} must be a secret reference like secret://NAME, not a literal value; "
        "store it with the secret store and refer to it by name"
    )


class SlackChannel(_Model):
    """A Slack incoming webhook. ``channel`` is #alerts for alarms, #deployments for deploys."""

    type: Literal["slack"]
    webhook_url: str
    channel: str = "#alerts"
    username: str = "deployops"
    timeout: Duration = 10.0

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, v: str) -> str:
        if v.startswith(SECRET_PREFIX):
            if not is_secret_ref(v):
                raise ValueError("write the secret reference as secret://NAME")
            return v
        problem = check_webhook_url(v)
        if problem:
            raise ValueError(f"webhook_url {problem}; better: secret://NAME")
        return v

    @field_validator("channel")
    @classmethod
    def _channel(cls, v: str) -> str:
        if not v.startswith(("#", "@")):
            raise ValueError("a Slack channel starts with '#' (e.g. #alerts)")
        return v


class EmailChannel(_Model):
    """E-mail over SMTP to the on-call address."""

    type: Literal["email"]
    smtp_host: str
    smtp_port: int = Field(default=25, ge=1, le=65535)
    sender: str = Field(alias="from")
    to: tuple[str, ...]
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: Duration = 10.0

    @field_validator("to", mode="before")
    @classmethod
    def _to_list(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v

    @field_validator("to")
    @classmethod
    def _addresses(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("name at least one address, e.g. oncall@example.com")
        bad = [a for a in v if not _EMAIL.match(a)]
        if bad:
            raise ValueError(f"not an e-mail address: {', '.join(bad)}")
        return v

    @field_validator("sender")
    @classmethod
    def _sender(cls, v: str) -> str:
        if not _EMAIL.match(v):
            raise ValueError(f"not an e-mail address: {v}")
        return v

    @field_validator("password")
    @classmethod
    def _password(cls, v: str | None) -> str | None:
        return _require_secret_ref(v, "password")

    @model_validator(mode="after")
    def _auth_pair(self) -> EmailChannel:
        if (self.username is None) != (self.password is None):
            raise ValueError("set both username and password (secret://NAME), or neither")
        return self


class PagerDutyChannel(_Model):
    """PagerDuty Events API v2; only ever routed critical notices (MON-2)."""

    type: Literal["pagerduty"]
    routing_key: str
    events_url: str = PAGERDUTY_EVENTS_URL
    source: str = "deployops"
    component: str = ""
    group: str = ""
    timeout: Duration = 10.0

    @field_validator("routing_key")
    @classmethod
    def _key(cls, v: str) -> str:
        out = _require_secret_ref(v, "routing_key")
        assert out is not None
        return out

    @field_validator("events_url")
    @classmethod
    def _events_url(cls, v: str) -> str:
        problem = check_webhook_url(v)
        if problem:
            raise ValueError(f"events_url {problem}")
        return v


ChannelConfig = Annotated[
    SlackChannel | EmailChannel | PagerDutyChannel, Field(discriminator="type")
]


class RetryPolicy(_Model):
    """Capped exponential backoff: ``initial_backoff * multiplier**n``, at most ``max_backoff``."""

    attempts: int = Field(default=3, ge=1, le=10)
    initial_backoff: Duration = 1.0
    max_backoff: Duration = 30.0
    multiplier: float = Field(default=2.0, ge=1.0, le=10.0)

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failed attempt (1-based)."""
        return float(
            min(self.max_backoff, self.initial_backoff * self.multiplier ** (failures - 1))
        )


class RateLimitPolicy(_Model):
    """A token bucket per channel: ``burst`` at once, refilled at ``per_minute``."""

    per_minute: float = Field(default=20.0, gt=0, le=6000)
    burst: int = Field(default=5, ge=1, le=1000)


class RedeliveryPolicy(_Model):
    """What happens to a notice that could not be delivered while its command ran: a command
    waits at most ``exit_wait`` at exit for deliveries still under way, then stores the rest
    in the state store; ``deployops serve`` retries each with capped exponential backoff
    (``initial_backoff * multiplier**n``, at most ``max_backoff``) until it is delivered or
    ``expire_after`` has passed since it was stored."""

    exit_wait: Duration = 3.0
    initial_backoff: Duration = 30.0
    max_backoff: Duration = 900.0
    multiplier: float = Field(default=2.0, ge=1.0, le=10.0)
    expire_after: Duration = 86400.0

    def delay(self, failures: int) -> float:
        """Seconds until the next try after the ``failures``-th failed one (1-based)."""
        return float(
            min(self.max_backoff, self.initial_backoff * self.multiplier ** max(0, failures - 1))
        )


class NotificationsConfig(_Model):
    """Channels, routes and delivery policy. Routes map a severity, an event kind family
    (``deployment``) or a full kind (``alarm.ok``) to channel names; a notice goes to the
    union of its severity's and its kind's routes."""

    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    routes: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    retry: RetryPolicy = RetryPolicy()
    rate_limit: RateLimitPolicy = RateLimitPolicy()
    dedup_window: Duration = 300.0
    redelivery: RedeliveryPolicy = RedeliveryPolicy()

    def channels_for(self, *, severity: str, kind: str) -> tuple[str, ...]:
        """Channel names for a notice, in route order, without duplicates. PagerDuty is
        dropped for anything but ``critical`` (MON-2), whatever the routes say."""
        family = kind.split(".", 1)[0]
        keys = [severity, family] + ([kind] if kind != family else [])
        out: list[str] = []
        for key in keys:
            for name in self.routes.get(key, ()):
                ch = self.channels.get(name)
                if ch is None or name in out:
                    continue
                if ch.type == "pagerduty" and severity != "critical":
                    continue
                out.append(name)
        return tuple(out)

    def cross_check(self) -> list[ConfigIssue]:
        """Second pass: every route names a known key and known channels; PagerDuty only
        for critical; channel names are simple."""
        issues: list[ConfigIssue] = []
        for name in self.channels:
            if not _CHANNEL_NAME.match(name):
                issues.append(
                    ConfigIssue(
                        f"notifications.channels.{name}",
                        "channel names are lowercase letters, digits and '-' (e.g. slack-alerts)",
                    )
                )
        for key, names in self.routes.items():
            where = f"notifications.routes.{key}"
            m = _KIND.match(key)
            if key not in SEVERITIES and (m is None or m.group(1) not in KIND_FAMILIES):
                options = [*SEVERITIES, *KIND_FAMILIES]
                close = difflib.get_close_matches(key.split(".")[0], options, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                issues.append(
                    ConfigIssue(
                        where,
                        f"unknown route {key!r}{hint}; route by severity "
                        f"({', '.join(SEVERITIES)}) or event kind "
                        f"({', '.join(KIND_FAMILIES)}, or e.g. alarm.ok)",
                    )
                )
            for name in names:
                ch = self.channels.get(name)
                if ch is None:
                    close = difflib.get_close_matches(name, list(self.channels), n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    defined = ", ".join(self.channels) or "none"
                    issues.append(
                        ConfigIssue(
                            where,
                            f"unknown channel {name!r}{hint}; notifications.channels "
                            f"defines: {defined}",
                        )
                    )
                elif ch.type == "pagerduty" and key != "critical":
                    issues.append(
                        ConfigIssue(
                            where,
                            f"PagerDuty channel {name!r} may only be routed from 'critical' "
                            "(MON-2: PagerDuty is for critical alerts only); move it to "
                            "routes.critical",
                        )
                    )
        if self.retry.max_backoff < self.retry.initial_backoff:
            issues.append(
                ConfigIssue(
                    "notifications.retry.max_backoff", "must not be less than initial_backoff"
                )
            )
        if self.redelivery.max_backoff < self.redelivery.initial_backoff:
            issues.append(
                ConfigIssue(
                    "notifications.redelivery.max_backoff",
                    "must not be less than initial_backoff",
                )
            )
        return issues

    def advisories(self) -> list[ConfigIssue]:
        """Not errors, but worth saying (``deployops config validate`` prints them): a literal
        webhook URL in the file is a credential in version control."""
        out: list[ConfigIssue] = []
        for name, ch in self.channels.items():
            if isinstance(ch, SlackChannel) and not ch.webhook_url.startswith(SECRET_PREFIX):
                out.append(
                    ConfigIssue(
                        f"notifications.channels.{name}.webhook_url",
                        "a literal webhook URL is a credential in the file; store it and "
                        "write secret://NAME",
                    )
                )
        return out


def load_notifications(raw: Any, *, file: str | None = None) -> NotificationsConfig:
    """Validate the ``notifications:`` mapping; every problem at once in one ``ConfigError``."""
    try:
        cfg = NotificationsConfig.model_validate(raw or {})
    except ValidationError as exc:
        issues = []
        for err in exc.errors(include_input=False):
            path = ".".join(["notifications", *(str(p) for p in err["loc"])])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "missing":
                msg = "required key is missing"
            elif err["type"] == "extra_forbidden":
                msg = "unknown key"
            issues.append(ConfigIssue(path, msg, file=file))
        raise ConfigError(issues) from None
    found = cfg.cross_check()
    if found:
        raise ConfigError([ConfigIssue(i.path, i.message, file=file) for i in found])
    return cfg
