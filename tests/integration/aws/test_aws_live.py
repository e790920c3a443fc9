"""Checks against a real AWS account: your credentials, your Terraform outputs, your stack.

Skipped unless both are given when pytest starts:

    AWS_PROFILE=deploy DEPLOYOPS_AWS_LIVE_OUTPUTS=infrastructure/tf-outputs.json \\
        .venv/bin/python -m pytest -m aws_live tests/integration/aws/test_aws_live.py

Read-only: every call describes or queries; nothing is created, switched or deleted. These
confirm what moto and the Stubber cannot: that the credentials and the IAM policy of
docs/aws.md allow deployops' reads, that the outputs name resources that exist, and that the
production listener forwards to one of the two colours.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from deployops.clock import SystemClock
from deployops.config.terraform_outputs import load_terraform_outputs
from deployops.domain.model import MetricName, MetricQuery, Statistic
from deployops.drivers import Platform
from deployops.drivers.aws import AwsSession, AwsSettings, build_with
from deployops.drivers.aws._resources import from_outputs

# Read at import, before the autouse fixture clears AWS_* and DEPLOYOPS_* for every test.
_LIVE_ENV = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
_OUTPUTS = os.environ.get("DEPLOYOPS_AWS_LIVE_OUTPUTS", "")
_HAS_CREDENTIALS = bool(
    _LIVE_ENV.get("AWS_PROFILE")
    or _LIVE_ENV.get("AWS_ACCESS_KEY_ID")
    or _LIVE_ENV.get("AWS_WEB_IDENTITY_TOKEN_FILE")
    or _LIVE_ENV.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
)

pytestmark = [
    pytest.mark.aws_live,
    pytest.mark.skipif(
        not (_HAS_CREDENTIALS and _OUTPUTS),
        reason="needs AWS credentials (AWS_PROFILE or keys) and DEPLOYOPS_AWS_LIVE_OUTPUTS "
        "(a `terraform output -json` file) when pytest starts",
    ),
]


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    for key, value in _LIVE_ENV.items():
        monkeypatch.setenv(key, value)
    path = Path(_OUTPUTS)
    outputs = load_terraform_outputs(path)
    resources = from_outputs(outputs, "web", extra=json.loads(path.read_text(encoding="utf-8")))
    session = AwsSession(AwsSettings(region=outputs.region))
    platform = build_with(session, resources, environment="live", clock=SystemClock())
    yield platform
    platform.close()


def test_the_production_listener_forwards_to_one_colour(live: Platform) -> None:
    listener = live.traffic.describe_listener("web-prod")
    assert listener.target_group in ("web-blue", "web-green")
    assert listener.host


def test_both_target_groups_exist_with_the_health_path(live: Platform) -> None:
    for colour in ("web-blue", "web-green"):
        tg = live.traffic.describe_target_group(colour)
        assert tg is not None, colour
        assert tg.health_check.path == "/health"


def test_the_live_colour_has_a_service_and_metrics_answer(live: Platform) -> None:
    live_tg = live.traffic.describe_listener("web-prod").target_group
    assert live.compute.describe_service(live_tg) is not None
    now = SystemClock().now()
    m = live.metrics.query(
        MetricQuery(
            metric=MetricName.REQUEST_COUNT,
            scope=live_tg,
            statistic=Statistic.SUM,
            start=now - timedelta(minutes=15),
            end=now,
        )
    )
    assert m.ok, m.error
