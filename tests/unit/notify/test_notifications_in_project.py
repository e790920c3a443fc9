"""The ``notifications:`` section inside ``deployops.yaml`` (MON-2): checked with the rest of the
project file, its problems reported with the file and path, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployops.config.project import load_project
from deployops.errors import ConfigError

PROJECT = """\
project: shop-api
environments:
  production: {platform: local}
services:
  web:
    port: 18080
    command: [python3, app.py]
notifications:
  channels:
    slack-alerts: {type: slack, webhook_url: "secret://slack-alerts"}
    pagerduty: {type: pagerduty, routing_key: "secret://pagerduty-key"}
  routes:
    critical: [slack-alerts, pagerduty]
    warning: [slack-alerts]
"""


def test_mon2_project_file_carries_validated_notification_settings(tmp_path: Path) -> None:
    path = tmp_path / "deployops.yaml"
    path.write_text(PROJECT, encoding="utf-8")
    settings = load_project(path).notification_settings()
    assert settings.channels_for(severity="critical", kind="alarm.alarm") == (
        "slack-alerts",
        "pagerduty",
    )


def test_mon2_project_file_without_notifications_has_none(tmp_path: Path) -> None:
    path = tmp_path / "deployops.yaml"
    path.write_text(PROJECT.split("notifications:")[0], encoding="utf-8")
    settings = load_project(path).notification_settings()
    assert settings.channels == {}
    assert settings.channels_for(severity="critical", kind="alarm.alarm") == ()


def test_mon2_bad_notifications_fail_project_validation_with_file_and_path(
    tmp_path: Path,
) -> None:
    path = tmp_path / "deployops.yaml"
    text = PROJECT.replace("warning: [slack-alerts]", "warning: [slack-alerts, pagerduty]")
    text = text.replace('"secret://slack-alerts"', '"http://hooks.example.com/T/B/X"')
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_project(path)
    rendered = str(info.value)
    assert f"{path}:notifications.channels.slack-alerts.slack.webhook_url" in rendered
    assert "must use https" in rendered
    assert "hooks.example.com/T/B/X" not in rendered
