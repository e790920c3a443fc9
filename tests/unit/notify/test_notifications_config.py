"""The ``notifications:`` schema (MON-2): secret references, https only, PagerDuty only for
critical, every problem reported at once with its path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployops.config.notifications import NotificationsConfig, load_notifications
from deployops.errors import ConfigError

KEY = "R0UT1NGKEY-very-secret-0123456789"


def _base() -> dict[str, Any]:
    return {
        "channels": {
            "slack-alerts": {"type": "slack", "webhook_url": "secret://slack-alerts"},
            "slack-deployments": {
                "type": "slack",
                "webhook_url": "secret://slack-deployments",
                "channel": "#deployments",
            },
            "email-oncall": {
                "type": "email",
                "smtp_host": "smtp.internal",
                "smtp_port": 587,
                "from": "deployops@example.com",
                "to": "oncall@example.com",
                "starttls": True,
                "username": "deployops",
                "password": "secret://smtp-password",
            },
            "pagerduty": {"type": "pagerduty", "routing_key": "secret://pagerduty-key"},
        },
        "routes": {
            "critical": ["slack-alerts", "email-oncall", "pagerduty"],
            "warning": ["slack-alerts", "email-oncall"],
            "deployment": ["slack-deployments"],
        },
        "retry": {"attempts": 4, "initial_backoff": "2s", "max_backoff": "1m"},
        "dedup_window": "10m",
    }


def _messages(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        load_notifications(raw, file="deployops.yaml")
    return str(info.value)


def test_mon2_annotated_example_loads_with_its_routes_and_durations() -> None:
    cfg = load_notifications(_base())
    assert cfg.retry.initial_backoff == 2.0
    assert cfg.retry.max_backoff == 60.0
    assert cfg.dedup_window == 600.0
    email = cfg.channels["email-oncall"]
    assert email.type == "email"
    assert email.to == ("oncall@example.com",)
    assert email.sender == "deployops@example.com"
    assert cfg.advisories() == []


def test_mon2_routes_union_severity_and_kind_and_pagerduty_only_for_critical() -> None:
    cfg = load_notifications(_base())
    assert cfg.channels_for(severity="critical", kind="deployment.failed") == (
        "slack-alerts",
        "email-oncall",
        "pagerduty",
        "slack-deployments",
    )
    assert cfg.channels_for(severity="warning", kind="alarm.alarm") == (
        "slack-alerts",
        "email-oncall",
    )
    assert cfg.channels_for(severity="info", kind="deployment.succeeded") == ("slack-deployments",)


def test_mon2_pagerduty_behind_a_kind_route_is_still_dropped_for_non_critical() -> None:
    # Validation forbids this; a config built in code is filtered at routing time too.
    raw = _base()
    cfg = NotificationsConfig.model_validate(raw)
    cfg = cfg.model_copy(update={"routes": {**cfg.routes, "alarm": ("pagerduty",)}})
    assert "pagerduty" not in cfg.channels_for(severity="warning", kind="alarm.alarm")
    assert "pagerduty" in cfg.channels_for(severity="critical", kind="alarm.alarm")


def test_mon2_pagerduty_routed_for_warning_is_a_config_error() -> None:
    raw = _base()
    raw["routes"]["warning"].append("pagerduty")
    text = _messages(raw)
    assert "deployops.yaml:notifications.routes.warning" in text
    assert "only be routed from 'critical'" in text


def test_mon2_plain_http_webhook_is_rejected_unless_loopback() -> None:
    raw = _base()
    raw["channels"]["slack-alerts"]["webhook_url"] = "http://hooks.example.com/services/T/B/X"
    text = _messages(raw)
    assert "notifications.channels.slack-alerts.slack.webhook_url" in text
    assert "must use https" in text
    assert "hooks.example.com/services" not in text  # the URL is itself a credential

    for url in ("http://127.0.0.1:8080/hook", "http://localhost:1/x", "http://[::1]:9/x"):
        raw["channels"]["slack-alerts"]["webhook_url"] = url
        assert load_notifications(raw).channels["slack-alerts"].type == "slack"


def test_mon2_literal_https_webhook_is_allowed_with_an_advisory() -> None:
    raw = _base()
    raw["channels"]["slack-alerts"]["webhook_url"] = "https://hooks.slack.com/services/T/B/X"
    cfg = load_notifications(raw)
    (advice,) = cfg.advisories()
    assert advice.path == "notifications.channels.slack-alerts.webhook_url"
    assert "secret://NAME" in advice.message


def test_mon2_literal_routing_key_and_password_are_refused_without_echoing_them() -> None:
    raw = _base()
    raw["channels"]["pagerduty"]["routing_key"] = KEY
    raw["channels"]["email-oncall"]["password"] = "hunter2-hunter2"
    text = _messages(raw)
    assert "pagerduty.pagerduty.routing_key" in text
    assert "email-oncall.email.password" in text
    assert "secret reference like secret://NAME" in text
    assert KEY not in text
    assert "hunter2-hunter2" not in text


def test_mon2_every_problem_is_reported_at_once_with_did_you_mean() -> None:
    raw = _base()
    raw["routes"]["critcal"] = ["slack-alerts"]
    raw["routes"]["deployment"] = ["slack-deploymnets"]
    raw["channels"]["email-oncall"]["to"] = ["not-an-address"]
    raw["channels"]["sms"] = {"type": "sms"}
    with pytest.raises(ConfigError) as info:
        load_notifications(raw)
    # structure errors come first (pass 1); fix them and the cross-field pass reports the rest
    paths = [i.path for i in info.value.issues]
    assert "notifications.channels.email-oncall.email.to" in paths
    assert "notifications.channels.sms" in paths

    raw["channels"]["email-oncall"]["to"] = ["oncall@example.com"]
    del raw["channels"]["sms"]
    with pytest.raises(ConfigError) as info:
        load_notifications(raw)
    text = str(info.value)
    assert "unknown route 'critcal' (did you mean 'critical'?)" in text
    assert "unknown channel 'slack-deploymnets' (did you mean 'slack-deployments'?)" in text
    assert len(info.value.issues) == 2


def test_mon2_email_auth_needs_both_username_and_password() -> None:
    raw = _base()
    del raw["channels"]["email-oncall"]["password"]
    assert "set both username and password" in _messages(raw)


def test_mon2_unknown_keys_are_refused() -> None:
    raw = _base()
    raw["channels"]["slack-alerts"]["webhook"] = "secret://x"
    assert "notifications.channels.slack-alerts.slack.webhook: unknown key" in _messages(raw)


def test_mon2_retry_backoff_is_exponential_and_capped() -> None:
    cfg = load_notifications(_base())
    assert [cfg.retry.delay(n) for n in (1, 2, 3, 4, 5, 6, 7)] == [2, 4, 8, 16, 32, 60, 60]


def test_mon2_the_documented_example_is_valid() -> None:
    """docs/notifications.md's annotated example is the reference configuration."""
    doc = Path(__file__).parents[3] / "docs" / "notifications.md"
    block = re.search(r"```yaml\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
    assert block is not None
    cfg = load_notifications(yaml.safe_load(block.group(1))["notifications"])
    assert cfg.channels_for(severity="critical", kind="alarm.alarm") == (
        "slack-alerts",
        "email-oncall",
        "pagerduty",
    )
    assert cfg.channels_for(severity="info", kind="deployment.started") == ("slack-deployments",)
    assert cfg.advisories() == []
