"""Contract for the ``Metrics`` and ``Prober`` ports, run on every driver (memory, local).

Metrics never raise and never invent data: a scope that served nothing has no judgeable
datapoint; requests a service served through its listener show up as request counts. The
prober never raises: a request nothing answers is a result with its status, not an error.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from deployops.domain.model import MetricName, MetricQuery, Statistic
from deployops.ports import Metrics, Prober
from tests.contract.conftest import ContractPlatform
from tests.fixtures_local import FAST_HEALTH, free_port

pytestmark = pytest.mark.integration


def _serve(p: ContractPlatform, version: str = "1.0.0") -> None:
    td = p.compute.register_task_definition(p.spec(version))
    p.traffic.create_target_group("web-blue", health_check=FAST_HEALTH)
    p.compute.create_service(
        "web-blue", task_definition=td.ref, desired_count=1, target_group="web-blue"
    )
    p.traffic.switch_listener("web-prod", "web-blue")
    p.wait_until(
        lambda: (
            (g := p.traffic.describe_target_group("web-blue")) is not None and g.healthy_count == 1
        ),
        what="a healthy target",
    )


def _requests(p: ContractPlatform, scope: str, seconds: float = 30.0) -> tuple[float, int]:
    now = p.clock.now()
    m = p.metrics.query(
        MetricQuery(
            metric=MetricName.REQUEST_COUNT,
            scope=scope,
            statistic=Statistic.SUM,
            start=now - timedelta(seconds=seconds),
            end=now + timedelta(seconds=1),
            period_s=1,
        )
    )
    assert m.ok, m.error
    return sum(d.value for d in m.datapoints), sum(d.samples for d in m.datapoints)


def test_the_drivers_satisfy_the_ports(platform_under_test: ContractPlatform) -> None:
    assert isinstance(platform_under_test.metrics, Metrics)
    assert isinstance(platform_under_test.prober, Prober)
    assert isinstance(platform_under_test.metrics.capabilities, frozenset)


def test_a_scope_that_served_nothing_has_no_judgeable_data(
    platform_under_test: ContractPlatform,
) -> None:
    """No data is never turned into a healthy reading (or a breach)."""
    p = platform_under_test
    now = p.clock.now()
    for metric, stat in (
        (MetricName.ERROR_RATE, Statistic.AVERAGE),
        (MetricName.RESPONSE_TIME, Statistic.P99),
        (MetricName.REQUEST_COUNT, Statistic.SUM),
    ):
        m = p.metrics.query(
            MetricQuery(
                metric=metric,
                scope="nosuch-green",
                statistic=stat,
                start=now - timedelta(minutes=5),
                end=now,
                period_s=60,
            )
        )
        assert m.ok, m.error
        assert [d for d in m.datapoints if d.samples > 0] == [], metric


def test_requests_served_through_the_listener_are_counted(
    platform_under_test: ContractPlatform,
) -> None:
    p = platform_under_test
    _serve(p)
    sent = 0
    for _ in range(20):
        res = p.prober.get(p.url("/"), timeout_s=5.0)
        assert res.status == 200, res
        sent += 1

    def counted() -> bool:
        value, _samples = _requests(p, "web-blue")
        return value >= sent

    p.wait_until(counted, timeout_s=20, what=f"{sent} requests counted")


def test_a_probe_reads_the_status_of_whoever_answers(
    platform_under_test: ContractPlatform,
) -> None:
    p = platform_under_test
    _serve(p)
    ok = p.prober.get(p.url("/health"), timeout_s=5.0)
    assert ok.status == 200 and not ok.error and ok.elapsed_ms >= 0
    # The test listener forwards to a colour with no service behind it: an answer, not 200.
    p.traffic.create_target_group("web-green", health_check=FAST_HEALTH)
    p.traffic.switch_listener("web-test", "web-green")
    empty = p.prober.get(p.url("/health", listener="test"), timeout_s=5.0)
    assert empty.status != 200


def test_a_probe_nothing_answers_is_a_result_not_an_exception(
    platform_under_test: ContractPlatform,
) -> None:
    p = platform_under_test
    res = p.prober.get(f"http://127.0.0.1:{free_port()}/health", timeout_s=1.0)
    assert res.status != 200
